extension HybridCache {
    /// `getResult` split at L1, for a front end that runs on an event loop and must not suspend
    /// for a hit: a fresh L1 value comes back at once; anything else comes back as a
    /// `PendingRead` to finish with `getResult(_:as:continuing:)`, which goes on to L2 and
    /// fail-safe exactly as `getResult` does, without reading L1 a second time.
    ///
    /// For byte values, the node's own: specialized here, so that a front end in another module
    /// does not run it unspecialized.
    package func tryGetFromMemory(_ key: String, as type: [UInt8].Type = [UInt8].self) throws -> MemoryFirstRead<[UInt8]> {
        switch try readMemory(key, skipsMemory: nil, eagerRefresh: false) {
        case .hit(let hit):
            return .hit(try hit.result(key: key, as: type))
        case let read:
            return .pending(PendingRead(read: read))
        }
    }

    /// `tryGetFromMemory` for a key given as its UTF-8 bytes, as a front end reads it off the
    /// wire. For a key `readsKeyBytes` accepts, L1 is looked up by the bytes, with the hash a
    /// `String` of them has, so a hit builds no `String` at all; everything else is
    /// `tryGetFromMemory`'s: the same servability rules, the same hit counting and event, the
    /// same `PendingRead` for the rest of the read. Any other key goes through
    /// `tryGetFromMemory` itself (bytes that are not UTF-8 are refused, never repaired).
    package func tryGetFromMemory(utf8 key: UnsafeRawBufferPointer) throws -> MemoryFirstRead<[UInt8]> {
        guard readsKeyBytes(key) else {
            guard let string = String(validating: key, as: UTF8.self) else {
                throw CacheError(.invalidKey, "the key is not valid UTF-8")
            }
            return try tryGetFromMemory(string)
        }
        // An ASCII key is valid UTF-8 and in NFC, so `validate(key:)` has nothing to refuse, and
        // two NFC keys are equal as strings exactly when their bytes are (`KeyNormalization`).
        let now = clock.coarseNow()
        if configuration.defaultEntryOptions.skipMemoryRead { return .pending(PendingRead(read: .miss)) }
        var servedStale: Bool?
        let found = memory.get(hash: Self.stringHash(utf8: key), where: { Self.utf8(of: $0, equals: key) }, now: now) {
            (entry: inout MemoryEntry) -> MemoryRead in
            guard isServable(entry, now: now) else { return .stale(entry) }
            servedStale = entry.isFailSafeValue
            return .hit(MemoryHit(value: entry.value, isStale: entry.isFailSafeValue, version: entry.version))
        }
        if let servedStale { instrumentation.memoryHit(key: String(decoding: key, as: UTF8.self), stale: servedStale) }
        // Switched on as consumed, with the nil case spelled out: `found ?? .miss` copied the
        // read (retaining its value) and destroyed the optional, about 2% of the node's CPU on
        // pipelined RESP GETs (`perf`).
        switch consume found {
        case .some(.hit(let hit)):
            // The key `String` is built only for the error: a key past 15 bytes would cost an
            // allocation and a free on every hit.
            return .hit(try hit.result(key: String(decoding: key, as: UTF8.self), as: [UInt8].self))
        case .some(let read):
            return .pending(PendingRead(read: read))
        case .none:
            return .pending(PendingRead(read: .miss))
        }
    }

    /// Whether `tryGetFromMemory(utf8:)` reads `key` by its bytes: an ASCII key (valid UTF-8,
    /// in NFC) of 1 to `maxKeyBytes` bytes, in a process whose `String` hashing is the one
    /// `stringHash(utf8:)` reproduces. A front end may leave every other key to its general path.
    package func readsKeyBytes(_ key: UnsafeRawBufferPointer) -> Bool {
        !key.isEmpty && key.count <= configuration.maxKeyBytes && Self.hashesKeyBytesAsStrings
            && KeyNormalization.isASCII(key.assumingMemoryBound(to: UInt8.self))
    }

    /// The `hashValue` of the `String` whose UTF-8 bytes (in NFC) are `utf8`: the standard
    /// library hashes a string as its normalized UTF-8 bytes followed by 0xFF. That is its
    /// implementation, not a promise, hence `hashesKeyBytesAsStrings`.
    @inline(__always)
    static func stringHash(utf8: UnsafeRawBufferPointer) -> Int {
        var hasher = Hasher()
        hasher.combine(bytes: utf8)
        hasher.combine(0xFF as UInt8)
        return hasher.finalize()
    }

    /// Whether `stringHash(utf8:)` gives what `String.hashValue` gives in this process, checked
    /// once on keys of several lengths (inline and heap strings); when it does not, byte-key
    /// reads step aside and every read builds its `String`.
    package static let hashesKeyBytesAsStrings: Bool = {
        let samples = ["k", "key:000000000001", "key:__rand_int__", "user:42:profile", String(repeating: "x", count: 200), "a b\u{0}c"]
        return samples.allSatisfy { key in
            var bytes = Array(key.utf8)
            return bytes.withUnsafeMutableBytes { stringHash(utf8: UnsafeRawBufferPointer($0)) } == key.hashValue
        }
    }()

    /// Whether `key`'s UTF-8 is `bytes`. Read through the view's contiguous storage, not
    /// `withUTF8`, which is mutating: the copy of the stored key it needed retained and released
    /// a key of 16 bytes or more (a heap string) on every lookup.
    @inline(__always)
    static func utf8(of key: String, equals bytes: UnsafeRawBufferPointer) -> Bool {
        let utf8 = key.utf8
        guard utf8.count == bytes.count else { return false }
        return utf8.withContiguousStorageIfAvailable { stored in
            for index in 0..<stored.count where stored[index] != bytes[index] { return false }
            return true
        } ?? utf8.elementsEqual(bytes)
    }

    /// Finishes a read that `tryGetFromMemory` could not serve from L1.
    package func getResult<Value: Codable & Sendable>(
        _ key: String, as type: Value.Type = Value.self, continuing pending: PendingRead
    ) async throws -> CacheResult<Value>? {
        try await tryGetBeyondMemory(key, as: type, options: nil, read: pending.read)
    }

    /// How long the L1 entry under `key` stays fresh from now, or nil when L1 has no fresh
    /// entry. Neither counts nor marks the entry as used.
    package func memoryFreshness(_ key: String) -> Duration? {
        let now = clock.now()
        // The entry's own deadline, whether or not the node is cut off from the backplane (which
        // changes how the value is served, not when it expires).
        guard let entry = memory.peek(key, now: now), !entry.isExpired, now < entry.freshUntil else { return nil }
        return now.duration(to: entry.freshUntil)
    }

    /// A fresh L1 value, counted as a hit, or nil with nothing counted, for a front end that
    /// hands anything but a hit to a path that reads the key again (`getResult`): the key is then
    /// counted there once, not twice. An uncounted look comes first; only an entry that can be
    /// served is read for real. An entry that stops being servable between the two (it expires
    /// or is replaced in those nanoseconds) is counted by both reads.
    package func servableMemoryHit(_ key: String) throws -> CacheResult<[UInt8]>? {
        if configuration.defaultEntryOptions.skipMemoryRead { return nil }
        let now = clock.coarseNow()
        guard let entry = memory.peek(key, now: now), isServable(entry, now: now) else { return nil }
        guard case .hit(let result) = try tryGetFromMemory(key, as: [UInt8].self) else { return nil }
        return result
    }

    /// `servableMemoryHit` for a key given as its UTF-8 bytes, which `readsKeyBytes` must
    /// accept (nil otherwise, with nothing counted): no key `String` is built for a hit.
    package func servableMemoryHit(utf8 key: UnsafeRawBufferPointer) throws -> CacheResult<[UInt8]>? {
        guard readsKeyBytes(key), !configuration.defaultEntryOptions.skipMemoryRead else { return nil }
        let now = clock.coarseNow()
        guard let entry = memory.peek(hash: Self.stringHash(utf8: key), where: { Self.utf8(of: $0, equals: key) }, now: now),
              isServable(entry, now: now)
        else { return nil }
        guard case .hit(let result) = try tryGetFromMemory(utf8: key) else { return nil }
        return result
    }
}

/// The outcome of `HybridCache.tryGetFromMemory`.
package enum MemoryFirstRead<Value: Sendable>: Sendable {
    /// A fresh L1 value, counted and announced as a hit.
    case hit(CacheResult<Value>)
    /// No fresh L1 value: finish with `HybridCache.getResult(_:as:continuing:)`.
    case pending(PendingRead)
}

/// What an L1 read found when it could not serve a value, carried to the rest of the read.
package struct PendingRead: Sendable {
    let read: MemoryRead
}
