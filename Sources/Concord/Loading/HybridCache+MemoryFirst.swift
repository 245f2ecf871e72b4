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
