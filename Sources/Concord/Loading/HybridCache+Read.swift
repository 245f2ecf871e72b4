import Logging

extension HybridCache {
    // MARK: - Public read API

    /// The value for `key` if the cache has a fresh one (L1, then L2), else nil. When L2 fails
    /// and fail-safe is on, a stale L1 value is returned, flagged `isStale`.
    ///
    /// Inlinable so that a fresh L1 hit runs specialized for `Value` in the caller's own frame:
    /// called unspecialized across modules, every call allocated an async frame and looked up
    /// `CacheResult<Value>`'s generic metadata, which cost several times the hit itself.
    @inlinable
    public func getResult<Value: Codable & Sendable>(
        _ key: String,
        as type: Value.Type = Value.self,
        options: CacheEntryOptions? = nil
    ) async throws -> CacheResult<Value>? {
        // A switch on the call's result moves the payload out; binding `read` first and
        // matching it copied the hit (existential and version) and destroyed the original.
        switch try readMemory(key, skipsMemory: options?.assignedSkipMemoryRead, eagerRefresh: false) {
        case .hit(let hit):
            return try hit.result(key: key, as: type)
        case let read:
            return try await tryGetBeyondMemory(key, as: type, options: options, read: read)
        }
    }

    /// `getResult` after an L1 read that found no fresh value: L2, then fail-safe.
    @usableFromInline
    func tryGetBeyondMemory<Value: Codable & Sendable>(
        _ key: String,
        as type: Value.Type,
        options: CacheEntryOptions?,
        read memoryRead: MemoryRead
    ) async throws -> CacheResult<Value>? {
        let options = entryOptions(options)
        let stale = memoryRead.entry
        guard let distributed, !options.skipDistributedRead else {
            return try staleFallback(stale, key: key, options: options, as: type)
        }
        try requireRunning(distributed: true, backplane: false)
        do {
            let readMark = pending.readMark()
            guard let read = try await readDistributed(distributed, key: key, options: options, hasFallback: stale != nil),
                  !isOlderThanOwnCopy(read, key: key, stale: stale, readMark: readMark)
            else {
                instrumentation.distributedMiss(key: key, announced: true)
                return nil
            }
            instrumentation.distributedHit(key: key, served: false)
            let now = clock.now()
            let entry = try makeEntry(from: read, as: type, options: options, now: now)
            if read.isExpired || entry.freshUntil <= now {
                // Stale in L2 too: a miss. Fail-safe serves stale values only when a level fails.
                instrumentation.distributedMiss(key: key, announced: true)
                return nil
            }
            if !options.skipMemoryWrite { install(entry, key: key, options: options, now: now, flight: nil, readMark: readMark) }
            instrumentation.distributedServed(key: key)
            return CacheResult(value: entry.value as! Value, source: .distributed, isStale: false, version: entry.version)
        } catch let error as CacheError where error.code == .typeMismatch || error.code == .serializationFailed {
            throw error
        } catch {
            return try staleFallback(stale, key: key, options: options, as: type)
        }
    }

    /// The value for `key` if the cache has a fresh one (L1, then L2), else nil. `getResult`
    /// says where it came from and whether it is stale.
    @inlinable
    public func get<Value: Codable & Sendable>(
        _ key: String,
        as type: Value.Type = Value.self,
        options: CacheEntryOptions? = nil
    ) async throws -> Value? {
        try await getResult(key, as: type, options: options)?.value
    }

    /// The value for `key`: from L1, else L2, else the factory, whose result is stored in both
    /// and announced to other nodes. Concurrent calls for one key share one L2 read and one
    /// factory call. With fail-safe, a factory error or timeout serves the last value instead.
    /// A factory's own error reaches the caller as itself; the cache's failures are `CacheError`.
    @inlinable
    public func getOrSet<Value: Codable & Sendable>(
        _ key: String,
        as type: Value.Type = Value.self,
        options: CacheEntryOptions? = nil,
        tags: [String] = [],
        factory: @escaping @Sendable () async throws -> Value
    ) async throws -> Value {
        try await getOrSetResult(key, as: type, options: options, tags: tags) { _ in try await factory() }.value
    }

    /// `getOrSet` with a factory that takes the `FactoryContext` (the stale value, adaptive
    /// options, `notModified()`). Returns the value as well.
    @inlinable
    public func getOrSet<Value: Codable & Sendable>(
        _ key: String,
        as type: Value.Type = Value.self,
        options: CacheEntryOptions? = nil,
        tags: [String] = [],
        factory: @escaping @Sendable (FactoryContext<Value>) async throws -> Value
    ) async throws -> Value {
        try await getOrSetResult(key, as: type, options: options, tags: tags, factory: factory).value
    }

    /// `getOrSet` that returns where the value came from, whether it is stale and its version.
    ///
    /// Inlinable for the same reason as `getResult`: a fresh L1 hit runs specialized in the caller.
    @inlinable
    public func getOrSetResult<Value: Codable & Sendable>(
        _ key: String,
        as type: Value.Type = Value.self,
        options: CacheEntryOptions? = nil,
        tags: [String] = [],
        factory: @escaping @Sendable (FactoryContext<Value>) async throws -> Value
    ) async throws -> CacheResult<Value> {
        if let tracing {
            return try await tracedGetOrSetResult(key, as: type, options: options, tags: tags, tracing: tracing, factory: factory)
        }
        return try await getOrSetResultWithoutTracingCheck(key, as: type, options: options, tags: tags, factory: factory)
    }

    /// `getOrSet` after an L1 read that found no fresh value, or one whose eager refresh is due.
    @usableFromInline
    func getOrSetBeyondMemory<Value: Codable & Sendable>(
        _ key: String,
        as type: Value.Type,
        options: CacheEntryOptions?,
        tags: [String],
        factory: @escaping @Sendable (FactoryContext<Value>) async throws -> Value,
        read: MemoryRead
    ) async throws -> CacheResult<Value> {
        let options = entryOptions(options)
        try requireRunning(
            distributed: !options.skipDistributedRead || !options.skipDistributedWrite,
            backplane: !options.skipBackplaneNotifications
        )
        if case .refreshDue(let entry) = read {
            let result: CacheResult<Value> = try served(entry, key: key, as: type)
            startEagerRefresh(key: key, options: options, tags: tags, stale: entry, factory: factory)
            return result
        }
        let staleEntry = read.entry
        return try await joinFlight(key: key, as: type) { flight in
            try await self.load(key: key, options: options, tags: tags, stale: staleEntry, flight: flight, factory: factory)
        }
    }


    // MARK: - Hits

    /// Reads L1 once for a `getResult` or `getOrSet`. A fresh entry is served here (counted and
    /// announced as `served` does) and returned as `.hit`; otherwise the entry read, if any, goes
    /// back to the caller's slow path (`.stale`), so that L1 is never read twice for one call.
    /// With `eagerRefresh`, a fresh entry whose refresh is due is returned as `.refreshDue`, for
    /// the slow path to serve and start the refresh.
    ///
    /// `skipsMemory` is the caller's `options?.assignedSkipMemoryRead`, read in the inlined caller, where
    /// it is usually a constant nil, rather than by copying the options struct here.
    @usableFromInline
    func readMemory(_ key: String, skipsMemory: Bool?, eagerRefresh: Bool) throws -> MemoryRead {
        try validate(key: key)
        // The coarse clock may lag by a tick: an entry can be served up to a tick past its
        // deadlines, which costs less than the precise read (see `SystemCacheClock`).
        let now = clock.coarseNow()
        if skipsMemory ?? configuration.defaultEntryOptions.skipMemoryRead { return .miss }
        // Decided in place under the shard's lock, so a hit copies out only its value and
        // version, and only the slow paths copy the whole entry. `servedStale` is set on a hit,
        // so that counting it afterwards does not look into (and copy) the read.
        var servedStale: Bool?
        let read = memory.get(key, now: now) { (entry: inout MemoryEntry) -> MemoryRead in
            guard isServable(entry, now: now) else { return .stale(entry) }
            if eagerRefresh, entry.eagerRefreshAt <= now, !entry.isFailSafeValue {
                return .refreshDue(entry)
            }
            servedStale = entry.isFailSafeValue
            return .hit(MemoryHit(value: entry.value, isStale: entry.isFailSafeValue, version: entry.version))
        }
        if let servedStale { instrumentation.memoryHit(key: key, stale: servedStale) }
        // Not `read ?? .miss`, which copies the read (retaining its value) and destroys the optional.
        switch consume read {
        case .some(let read): return read
        case .none: return .miss
        }
    }

    /// Whether an L1 entry may be served as fresh: not expired, not past its freshness, and the
    /// node not cut off from the backplane. Fail-safe values stay servable (flagged) for the throttle.
    @inline(__always)
    func isServable(_ entry: MemoryEntry, now: CacheInstant) -> Bool {
        if entry.isExpired || now >= entry.freshUntil { return false }
        if entry.isFailSafeValue { return true }
        return !isCutOff(now: now)
    }

    @inline(__always)
    func served<Value: Sendable>(_ entry: MemoryEntry, key: String, as type: Value.Type) throws -> CacheResult<Value> {
        guard let value = Self.cast(entry.value, to: Value.self) else {
            throw Self.typeMismatch(key: key, found: entry.value, expected: Value.self)
        }
        instrumentation.memoryHit(key: key, stale: entry.isFailSafeValue)
        return CacheResult(value: value, source: .memory, isStale: entry.isFailSafeValue, version: entry.version)
    }

    /// Serves a stale L1 value when fail-safe allows it, else nil.
    func staleFallback<Value: Sendable>(_ stale: MemoryEntry?, key: String, options: CacheEntryOptions, as type: Value.Type) throws -> CacheResult<Value>? {
        guard let stale, stale.allowsFailSafe, options.isFailSafeEnabled else {
            instrumentation.miss(key: key)
            return nil
        }
        guard let value = stale.value as? Value else {
            throw CacheError(.typeMismatch, "the value cached for '\(key)' is a \(Swift.type(of: stale.value)), not a \(Value.self)")
        }
        instrumentation.staleValueServed(key: key, source: stale.source, ageMilliseconds: age(of: stale.version))
        return CacheResult(value: value, source: stale.source, isStale: true, version: stale.version)
    }

    /// How old a value of `version` is now, in wall milliseconds (negative when it comes from a
    /// clock that runs ahead).
    func age(of version: CacheVersion) -> Int64 {
        Saturating.difference(clock.wallClockMilliseconds(), version.milliseconds)
    }
}
