import Logging

extension HybridCache {
    // MARK: - Applying mutations to L1

    /// Records an invalidation in every flight it concerns, so a racing load cannot install
    /// an older value afterwards. Must run before `applyToMemory`.
    func fenceFlights(kind: MutationKind, key: String, version: CacheVersion) {
        let targets: [Flight] = flights.withLock { flights in
            if kind.isKeyed { return flights[key].map { [$0] } ?? [] }
            return Array(flights.values)
        }
        for flight in targets { flight.invalidate(upTo: version) }
    }

    /// Applies a mutation (local, or another node's) to L1: entries older than `version` are
    /// expired (kept for fail-safe) or removed. A clear or tag removal also drops the queued
    /// writes and fills it supersedes (`PendingWrites.dropQueued`).
    func applyToMemory(kind: MutationKind, key: String, version: CacheVersion, now: CacheInstant) {
        if !kind.isKeyed { pending.dropQueued(supersededBy: kind, key: key, version: version) }
        @inline(__always)
        func expireOrRemove(_ item: inout MemoryCacheItem<MemoryEntry>) -> MemoryCacheUpdateAction {
            guard item.value.version < version else { return .keep }
            if item.value.allowsFailSafe {
                item.value.isExpired = true
                item.value.isFailSafeValue = false
                return .keep
            }
            return .remove
        }
        switch kind {
        case .set, .expire:
            memory.update(key, now: now) { expireOrRemove(&$0) }
        case .remove:
            memory.update(key, now: now) { $0.value.version < version ? .remove : .keep }
        case .removeTag:
            memory.updateAll(now: now) { _, item in
                item.value.version < version && item.value.tags.contains(key) ? .remove : .keep
            }
        case .clearRemove:
            memory.updateAll(now: now) { _, item in item.value.version < version ? .remove : .keep }
        case .clearExpire:
            memory.updateAll(now: now) { _, item in expireOrRemove(&item) }
        }
    }

}
