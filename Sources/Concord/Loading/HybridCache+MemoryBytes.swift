extension HybridCache {
    /// `tryGetFromMemory(utf8:)` for a front end that copies a hit's bytes straight into its
    /// reply: `write` is handed the stored bytes in place, under the shard's lock, and nil comes
    /// back. A hit then takes no reference to the value: on a hot key read from two event loops,
    /// retaining and releasing one reference count made its cache line move between the cores on
    /// every hit, and the two atomics were the largest share of the node's own CPU on pipelined
    /// RESP GETs (`perf`).
    ///
    /// Everything else is `tryGetFromMemory(utf8:)`'s: a key it does not read by its bytes, a
    /// value that is not bytes (read again there, which counts it and throws the type mismatch),
    /// and no fresh value, whose `PendingRead` comes back. A hit is counted and announced as
    /// there. `write` must be quick and must not call the cache.
    package func writeMemoryHit(utf8 key: UnsafeRawBufferPointer, _ write: (UnsafeRawBufferPointer) -> Void) throws -> PendingRead? {
        guard readsKeyBytes(key), !configuration.defaultEntryOptions.skipMemoryRead else {
            return try Self.writingHit(tryGetFromMemory(utf8: key), write)
        }
        let now = clock.coarseNow()
        var servedStale: Bool?
        let found = memory.get(hash: Self.stringHash(utf8: key), where: { Self.utf8(of: $0, equals: key) }, now: now) {
            (entry: inout MemoryEntry) -> MemoryBytesRead in
            guard isServable(entry, now: now) else { return .stale(entry) }
            // `inout`, so the existential is opened where it lies, not copied out first.
            guard Self.withStoredBytes(&entry.value, write) else { return .notBytes }
            servedStale = entry.isFailSafeValue
            return .written
        }
        switch consume found {
        case .some(.written):
            if let servedStale { instrumentation.memoryHit(key: String(decoding: key, as: UTF8.self), stale: servedStale) }
            return nil
        case .some(.stale(let entry)):
            return PendingRead(read: .stale(entry))
        case .some(.notBytes):
            return try Self.writingHit(tryGetFromMemory(utf8: key), write)
        case .none:
            return PendingRead(read: .miss)
        }
    }

    /// Writes a hit's bytes and answers nil, or answers the read still to finish.
    private static func writingHit(_ read: consuming MemoryFirstRead<[UInt8]>, _ write: (UnsafeRawBufferPointer) -> Void) -> PendingRead? {
        switch consume read {
        case .hit(let result):
            result.value.withUnsafeBytes(write)
            return nil
        case .pending(let pending):
            return pending
        }
    }

    /// Hands `write` the bytes of a stored `[UInt8]` where they lie: no copy of the array, so no
    /// retain. False, with nothing written, for a value of another type.
    ///
    /// The bytes' address is taken first and `write` called after: around a call to an opaque
    /// closure, the compiler retains an array read through a pointer, since for all it knows the
    /// closure could replace it. Here nothing can: the array is the slot's, and the shard's lock,
    /// held by the caller for as long as `write` runs, keeps it stored and unchanged.
    @inline(__always)
    private static func withStoredBytes<Stored>(_ value: inout Stored, _ write: (UnsafeRawBufferPointer) -> Void) -> Bool {
        guard Stored.self == [UInt8].self else { return false }
        let bytes = withUnsafeMutablePointer(to: &value) { stored in
            UnsafeMutableRawPointer(stored).assumingMemoryBound(to: [UInt8].self).pointee.withUnsafeBytes { $0 }
        }
        write(bytes)
        return true
    }
}

/// What `writeMemoryHit` found under the shard's lock.
private enum MemoryBytesRead {
    /// A fresh byte value, handed to the writer.
    case written
    /// An entry that may not be served as fresh, kept for the rest of the read.
    case stale(MemoryEntry)
    /// A fresh value of another type than bytes.
    case notBytes
}
