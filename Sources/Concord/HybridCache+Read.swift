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
        switch try readMemory(key, skipsMemory: options?.assignedSkipMemoryRead, eagerRefresh: true) {
        case .hit(let hit):
            return try hit.result(key: key, as: type)
        case let read:
            return try await getOrSetBeyondMemory(key, as: type, options: options, tags: tags, factory: factory, read: read)
        }
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
        return read ?? .miss
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

    // MARK: - Flights

    /// Runs `body` once per key for all concurrent callers. The flight runs in the background
    /// task group when `run()` is active, so a cancelled caller never cancels it for the others;
    /// otherwise the first caller runs it, and if that caller is cancelled the others retry.
    func joinFlight<Value: Sendable>(
        key: String,
        as type: Value.Type,
        _ body: @escaping @Sendable (Flight) async throws -> Flight.Outcome
    ) async throws -> CacheResult<Value> {
        while true {
            let (flight, isLeader) = flights.withLock { flights -> (Flight, Bool) in
                if let existing = flights[key] { return (existing, false) }
                let flight = Flight()
                flights[key] = flight
                return (flight, true)
            }
            if isLeader {
                let finish: @Sendable () async -> Void = {
                    let result: Result<Flight.Outcome, any Error>
                    do { result = .success(try await body(flight)) } catch { result = .failure(error) }
                    self.flights.withLock { flights in
                        if flights[key] === flight { flights[key] = nil }
                    }
                    flight.promise.complete(result)
                }
                if !runInBackground(finish) {
                    await finish()
                }
            }
            do {
                let outcome = try await flight.promise.wait()
                guard let value = outcome.value as? Value else {
                    throw CacheError(.typeMismatch, "the value loaded for '\(key)' is a \(Swift.type(of: outcome.value)), not a \(Value.self)")
                }
                return CacheResult(value: value, source: outcome.source, isStale: outcome.isStale, version: outcome.version)
            } catch is CancellationError where !Task.isCancelled {
                // The leader ran the flight inline and was cancelled: elect a new leader.
                continue
            } catch is CancellationError {
                throw CacheError(.cancelled, "the call for '\(key)' was cancelled")
            }
        }
    }

    // MARK: - Loading

    /// A flight's work: L2, then the factory, then fail-safe.
    func load<Value: Codable & Sendable>(
        key: String,
        options: CacheEntryOptions,
        tags: [String],
        stale initialStale: MemoryEntry?,
        flight: Flight,
        forceFactory: Bool = false,
        factory: @escaping @Sendable (FactoryContext<Value>) async throws -> Value
    ) async throws -> Flight.Outcome {
        var stale = initialStale
        if let distributed, !options.skipDistributedRead {
            do {
                let readMark = pending.readMark()
                if let read = try await readDistributed(distributed, key: key, options: options, hasFallback: stale != nil),
                   !isOlderThanOwnCopy(read, key: key, stale: stale, readMark: readMark) {
                    let now = clock.now()
                    let entry = try makeEntry(from: read, as: Value.self, options: options, now: now)
                    let isNewer = stale.map { entry.version > $0.version } ?? true
                    if !read.isExpired, entry.freshUntil > now, !forceFactory || isNewer {
                        instrumentation.valueServed(ageMilliseconds: age(of: entry.version))
                        if !options.skipMemoryWrite { install(entry, key: key, options: options, now: now, flight: flight, readMark: readMark) }
                        instrumentation.distributedHit(key: key, served: true)
                        return Flight.Outcome(value: entry.value, source: .distributed, isStale: false, version: entry.version)
                    }
                    stale = newer(stale, entry)
                } else {
                    instrumentation.distributedMiss(key: key, announced: false)
                }
            } catch let error as CacheError where error.code == .typeMismatch {
                throw error
            } catch {
                // Logged and counted by readDistributed; the factory can still serve the call.
            }
        }
        instrumentation.miss(key: key)
        return try await callFactory(key: key, options: options, tags: tags, stale: stale, flight: flight, factory: factory)
    }

    /// Whether an L2 answer is older than what this node itself holds for the key: its L1 copy
    /// (even a stale one), or a mutation of its own that L2 may not have yet (a write, remove or
    /// expire of the key, a removal of one of the entry's tags, a clear; queued or still being
    /// tried). Serving that answer would go back in time (read-your-writes, monotonic reads), so
    /// it counts as a miss and the factory decides.
    ///
    /// `readMark` is `pending.readMark()` taken before the L2 read: a mutation of this node that
    /// landed in L2 after the read counts too.
    func isOlderThanOwnCopy(_ read: DistributedRead, key: String, stale: MemoryEntry?, readMark: UInt64) -> Bool {
        let version = read.entry.version
        if let stale, version < stale.version { return true }
        return pending.hasOwnMutation(newerThan: version, key: key, tags: read.entry.tags, since: readMark)
    }

    /// Reads L2 under the L2 timeouts: the soft timeout applies only when a fail-safe value
    /// could be served instead. Errors are logged, counted and rethrown.
    func readDistributed(
        _ distributed: any DistributedCache,
        key: String,
        options: CacheEntryOptions,
        hasFallback: Bool
    ) async throws -> DistributedRead? {
        let start = clock.now()
        var deadline = options.distributedHardTimeout.map { start + $0 }
        if hasFallback, options.isFailSafeEnabled, let soft = options.distributedSoftTimeout {
            deadline = min(deadline ?? start + soft, start + soft)
        }
        do {
            let outcome = try await withDeadline(deadline, clock: clock) { try await distributed.read(key) }
            instrumentation.distributedReadTook(nanoseconds: Int64((clock.now() - start).nanosecondsClamped))
            switch outcome {
            case .value(let read):
                if let read, !versions.observe(read.entry.version) {
                    // Forged or corrupt: believing it would let one entry outrank every write.
                    instrumentation.distributedFutureVersion(key: key, version: read.entry.version)
                    noteDistributedReachable()
                    return nil
                }
                noteDistributedReachable()
                return read
            case .timedOut:
                throw CacheError(.distributedTimeout, "L2 read of '\(key)' timed out")
            }
        } catch {
            if Task.isCancelled { throw error }
            instrumentation.distributedReadFailed(key: key, error: error)
            throw error
        }
    }

    /// An L1 entry from an L2 read; its freshness is the earlier of L2's logical expiry and
    /// the L1 duration.
    func makeEntry<Value: Codable & Sendable>(from read: DistributedRead, as type: Value.Type, options: CacheEntryOptions, now: CacheInstant) throws -> MemoryEntry {
        let value = try codec.decode(type, from: read.entry.payload)
        let wallNow = clock.wallClockMilliseconds()
        let remaining = Duration.milliseconds(Saturating.difference(read.entry.logicalExpiryMilliseconds, wallNow))
        let memoryFreshness = min(remaining, options.effectiveMemoryDuration)
        return MemoryEntry(
            value: value,
            version: read.entry.version,
            node: nodeNames.intern(read.entry.version.node),
            freshUntil: now + memoryFreshness,
            eagerRefreshAt: eagerRefreshInstant(options: options, start: now, freshness: memoryFreshness),
            tags: read.entry.tags,
            isExpired: read.isExpired,
            isFailSafeValue: false,
            allowsFailSafe: options.isFailSafeEnabled,
            failSafeCycles: 0,
            source: .distributed
        )
    }

    func newer(_ lhs: MemoryEntry?, _ rhs: MemoryEntry) -> MemoryEntry {
        guard let lhs else { return rhs }
        return rhs.version > lhs.version ? rhs : lhs
    }

    func eagerRefreshInstant(options: CacheEntryOptions, start: CacheInstant, freshness: Duration) -> CacheInstant {
        guard let threshold = options.eagerRefreshThreshold, freshness > .zero else {
            return CacheInstant(nanoseconds: .max)
        }
        let offset = Int64(Double(freshness.nanosecondsClamped) * threshold)
        return CacheInstant(nanoseconds: start.nanoseconds &+ offset)
    }

    /// Installs an entry in L1 unless L1 holds a newer version or, for a flight, an
    /// invalidation newer than the entry arrived while the flight ran (a fenced fill). An entry
    /// read from L2 (`readMark` set) is also refused when this node made a newer mutation of it
    /// since the read began: checked under L1's lock, so the mutation's own L1 update, which
    /// follows its admission, cannot be overwritten.
    @discardableResult
    func install(_ entry: MemoryEntry, key: String, options: CacheEntryOptions, now: CacheInstant, flight: Flight?, readMark: UInt64? = nil) -> Bool {
        let physicalLifetime: Duration
        if options.isFailSafeEnabled {
            physicalLifetime = max(options.failSafeMaxDuration, entry.freshUntil - now)
        } else {
            physicalLifetime = entry.freshUntil - now
        }
        let item = MemoryCacheItem(
            value: entry,
            cost: memoryCost(key: key, entry: entry, options: options),
            expiresAt: now + physicalLifetime,
            idleTimeout: options.memoryIdleTimeout
        )
        let installed = memory.set(key, item, now: now) { existing in
            if let flight, !flight.allowsInstall(of: entry.version) { return false }
            if let readMark, pending.hasOwnMutation(newerThan: entry.version, key: key, tags: entry.tags, since: readMark) { return false }
            guard let existing else { return true }
            if existing.version < entry.version { return true }
            // The same version may refresh a stale copy (a renewed expiry), never a newer one.
            return existing.version == entry.version && !entry.isExpired
        }
        if !installed {
            logger.trace("fill fenced off", metadata: ["concord.key": .string(key), "concord.version": "\(entry.version)"])
        }
        return installed
    }

    // MARK: - Factory

    /// Calls the factory under its timeouts; on success stores the value, on failure serves the
    /// stale value through fail-safe or throws.
    func callFactory<Value: Codable & Sendable>(
        key: String,
        options: CacheEntryOptions,
        tags: [String],
        stale: MemoryEntry?,
        flight: Flight,
        factory: @escaping @Sendable (FactoryContext<Value>) async throws -> Value
    ) async throws -> Flight.Outcome {
        // The value is as of just before the load started: a write that another node makes
        // while the factory runs gets a later version and wins in L2 and in L1, even when both
        // fall in the same millisecond (a fill that loses costs a miss; a fill that wrongly won
        // would keep a stale value). See `HybridCacheConfiguration.factoryVersionMargin`.
        let version = fillVersion()
        let staleValue = stale?.value as? Value
        let context = FactoryContext<Value>(key: key, staleValue: staleValue, options: options, tags: tags.isEmpty ? (stale?.tags ?? []) : tags)
        instrumentation.factoryCalled(key: key)
        let start = clock.now()
        let run = FactoryRun<Value>()
        let work: @Sendable () async -> Void = {
            let result: Result<Value, any Error>
            do { result = .success(try await factory(context)) } catch { result = .failure(error) }
            if run.finish(result) == .abandonedForBackground {
                await self.completeInBackground(key: key, result: result, context: context, version: version, stale: stale)
            }
        }
        let inBackground = runInBackground {
            await run.runCancellable(work)
        }
        let hasFailSafeValue = options.isFailSafeEnabled && stale?.allowsFailSafe == true && staleValue != nil
        if !inBackground {
            if options.factorySoftTimeout != nil || options.factoryHardTimeout != nil {
                noteNotRunning("factory timeouts with background completion")
            }
            // Inline: timeouts cancel the factory, which must honour cancellation.
            let deadline = [options.factoryHardTimeout, hasFailSafeValue ? options.factorySoftTimeout : nil]
                .compactMap { $0 }.min().map { start + $0 }
            let outcome = try await withDeadline(deadline, clock: clock) { () async throws -> Result<Value, any Error> in
                do { return .success(try await factory(context)) } catch { return .failure(error) }
            }
            switch outcome {
            case .value(let result):
                return try await finishFactory(key: key, result: result, context: context, version: version, stale: stale, flight: flight, start: start)
            case .timedOut:
                return try factoryTimedOut(key: key, soft: hasFailSafeValue, options: options, stale: stale)
            }
        }
        if hasFailSafeValue, let soft = options.factorySoftTimeout {
            if case .value(let result) = try await withDeadline(start + soft, clock: clock, { try await run.promise.wait() }) {
                return try await finishFactory(key: key, result: result, context: context, version: version, stale: stale, flight: flight, start: start)
            }
            if run.abandon(allowBackgroundCompletion: options.allowTimedOutFactoryBackgroundCompletion) {
                return try factoryTimedOut(key: key, soft: true, options: options, stale: stale)
            }
            // It finished just as the soft timeout fired: use the result.
        }
        let hardDeadline = options.factoryHardTimeout.map { start + $0 }
        if case .value(let result) = try await withDeadline(hardDeadline, clock: clock, { try await run.promise.wait() }) {
            return try await finishFactory(key: key, result: result, context: context, version: version, stale: stale, flight: flight, start: start)
        }
        if run.abandon(allowBackgroundCompletion: options.allowTimedOutFactoryBackgroundCompletion) {
            return try factoryTimedOut(key: key, soft: false, options: options, stale: stale)
        }
        let result = try await run.promise.wait()
        return try await finishFactory(key: key, result: result, context: context, version: version, stale: stale, flight: flight, start: start)
    }

    /// A version for a factory's value: the clock's next stamp moved back by the margin.
    func fillVersion() -> CacheVersion {
        var version = versions.next()
        version.milliseconds -= configuration.factoryVersionMargin.millisecondsClamped
        return version
    }

    private func factoryTimedOut(key: String, soft: Bool, options: CacheEntryOptions, stale: MemoryEntry?) throws -> Flight.Outcome {
        instrumentation.factoryTimedOut(key: key, soft: soft)
        let error = CacheError(.factoryTimeout, "the factory for '\(key)' did not finish within its \(soft ? "soft" : "hard") timeout")
        return try activateFailSafe(key: key, options: options, stale: stale, error: error)
    }

    /// Stores a factory result and builds the flight's outcome; on a factory error, fail-safe.
    private func finishFactory<Value: Codable & Sendable>(
        key: String,
        result: Result<Value, any Error>,
        context: FactoryContext<Value>,
        version: CacheVersion,
        stale: MemoryEntry?,
        flight: Flight?,
        start: CacheInstant
    ) async throws -> Flight.Outcome {
        instrumentation.factoryFinished(nanoseconds: (clock.now() - start).nanosecondsClamped)
        switch result {
        case .success(let value):
            let options = context.options
            try options.validate()
            let entry = try await store(
                value, key: key, version: version, options: options, tags: context.tags, source: .factory, flight: flight
            )
            return Flight.Outcome(value: entry.value, source: .factory, isStale: false, version: entry.version)
        case .failure(let error as CacheError) where error.code == .notFound:
            // The source says the key does not exist: not a failure, and no stale copy may
            // stand in for a value that is gone.
            if let stale {
                let staleVersion = stale.version
                memory.update(key, now: clock.now()) { $0.value.version == staleVersion ? .remove : .keep }
            }
            throw error
        case .failure(let error):
            instrumentation.factoryFailed(key: key, error: error)
            // Rethrown as itself, so the caller can match its own error type.
            return try activateFailSafe(key: key, options: context.options, stale: stale, error: error)
        }
    }

    /// A factory that timed out finished in the background: store its value unless the cache
    /// moved past it meanwhile.
    private func completeInBackground<Value: Codable & Sendable>(
        key: String,
        result: Result<Value, any Error>,
        context: FactoryContext<Value>,
        version: CacheVersion,
        stale: MemoryEntry?
    ) async {
        guard case .success(let value) = result else { return }
        do {
            _ = try await store(value, key: key, version: version, options: context.options, tags: context.tags, source: .factory, flight: nil)
            instrumentation.backgroundFactoryCompleted(key: key)
        } catch {
            instrumentation.backgroundFactoryNotStored(key: key, error: error)
        }
    }

    /// Serves the stale value after a failure, renewing it for the throttle duration; or throws.
    func activateFailSafe(key: String, options: CacheEntryOptions, stale: MemoryEntry?, error: any Error) throws -> Flight.Outcome {
        guard options.isFailSafeEnabled, var entry = stale, entry.allowsFailSafe else { throw error }
        if let maxCycles = options.failSafeMaxCycles, Int(entry.failSafeCycles) >= maxCycles {
            instrumentation.failSafeExhausted(key: key)
            throw error
        }
        let now = clock.now()
        entry.isFailSafeValue = true
        entry.isExpired = false
        entry.failSafeCycles &+= 1
        entry.freshUntil = now + options.failSafeThrottleDuration
        entry.eagerRefreshAt = CacheInstant(nanoseconds: .max)
        let version = entry.version
        memory.set(key, MemoryCacheItem(value: entry, cost: memoryCost(key: key, entry: entry, options: options), expiresAt: now + options.failSafeMaxDuration, idleTimeout: options.memoryIdleTimeout), now: now) { existing in
            existing == nil || existing!.version <= version
        }
        instrumentation.failSafeActivated(key: key, error: error, ageMilliseconds: age(of: entry.version))
        return Flight.Outcome(value: entry.value, source: entry.source, isStale: true, version: entry.version)
    }

    // MARK: - Eager refresh

    private func startEagerRefresh<Value: Codable & Sendable>(
        key: String,
        options: CacheEntryOptions,
        tags: [String],
        stale: MemoryEntry,
        factory: @escaping @Sendable (FactoryContext<Value>) async throws -> Value
    ) {
        let flight: Flight? = flights.withLock { flights in
            guard flights[key] == nil else { return nil }
            let flight = Flight()
            flights[key] = flight
            return flight
        }
        guard let flight else { return }
        instrumentation.eagerRefreshStarted(key: key)
        let started = runInBackground {
            let result: Result<Flight.Outcome, any Error>
            do {
                result = .success(try await self.load(key: key, options: options, tags: tags, stale: stale, flight: flight, forceFactory: true, factory: factory))
            } catch {
                result = .failure(error)
            }
            self.flights.withLock { flights in
                if flights[key] === flight { flights[key] = nil }
            }
            flight.promise.complete(result)
        }
        if !started {
            noteNotRunning("eager refresh")
            flights.withLock { flights in
                if flights[key] === flight { flights[key] = nil }
            }
            flight.promise.complete(.failure(CancellationError()))
        }
    }
}

import Synchronization

/// A factory call that the caller may stop waiting for (a timeout) while it goes on in the
/// background, or may cancel when background completion is not allowed.
final class FactoryRun<Value: Sendable>: Sendable {
    enum Finish: Equatable { case delivered, abandonedForBackground, discarded }

    private enum State { case running, abandoned(background: Bool), finished }

    let promise = Promise<Result<Value, any Error>>()
    private let cancelSignal = Promise<Void>()
    private let state = Mutex(State.running)

    init() {}

    /// Runs the factory work until it ends or `abandon` cancels it.
    func runCancellable(_ work: @escaping @Sendable () async -> Void) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await work() }
            group.addTask { try? await self.cancelSignal.wait() }
            await group.next()
            group.cancelAll()
        }
    }

    /// Records the factory's result; says what to do with it.
    func finish(_ result: Result<Value, any Error>) -> Finish {
        let outcome: Finish = state.withLock { state in
            switch state {
            case .running:
                state = .finished
                return .delivered
            case .abandoned(let background):
                state = .finished
                return background ? .abandonedForBackground : .discarded
            case .finished:
                return .discarded
            }
        }
        promise.complete(.success(result))
        cancelSignal.complete(.success(()))
        return outcome
    }

    /// The caller stops waiting. True if the factory was still running (then it completes in
    /// the background when allowed, or is cancelled); false if it had already finished.
    func abandon(allowBackgroundCompletion: Bool) -> Bool {
        let abandoned: Bool = state.withLock { state in
            guard case .running = state else { return false }
            state = .abandoned(background: allowBackgroundCompletion)
            return true
        }
        if abandoned, !allowBackgroundCompletion { cancelSignal.complete(.success(())) }
        return abandoned
    }
}

/// One L1 read of a `getResult` or `getOrSet`: a fresh value ready to serve, or the entry found
/// (stale, or due for an eager refresh) for the rest of the call.
@usableFromInline
enum MemoryRead: Sendable {
    /// No entry, or L1 not read.
    case miss
    /// A fresh value, served.
    case hit(MemoryHit)
    /// An entry that may not be served as fresh (expired, past its freshness, or the node is
    /// cut off), kept for fail-safe and version checks.
    case stale(MemoryEntry)
    /// A fresh entry whose eager refresh is due (`getOrSet` only).
    case refreshDue(MemoryEntry)

    /// The entry found but not served, if any.
    var entry: MemoryEntry? {
        switch self {
        case .miss, .hit: nil
        case .stale(let entry), .refreshDue(let entry): entry
        }
    }
}

/// A fresh L1 value, already counted and announced; only the cast to the caller's type is left,
/// which inlined callers do specialized.
@usableFromInline
struct MemoryHit: Sendable {
    @usableFromInline
    var value: any Sendable
    @usableFromInline
    var isStale: Bool
    @usableFromInline
    var version: CacheVersion

    @inlinable
    func result<Value: Sendable>(key: String, as type: Value.Type) throws -> CacheResult<Value> {
        guard let value = HybridCache.cast(value, to: Value.self) else {
            throw HybridCache.typeMismatch(key: key, found: self.value, expected: Value.self)
        }
        return CacheResult(value: value, source: .memory, isStale: isStale, version: version)
    }
}

extension HybridCache {
    /// `value as? Value`, with a fast path for the usual case where the value's dynamic type is
    /// exactly `Value`: a comparison of type metadata and a copy, where the general cast goes
    /// through the runtime's `swift_dynamicCast` (about 220 instructions for an `Int`). Other
    /// cases (optionals, class hierarchies, existentials) take the general cast.
    @inlinable
    @inline(__always)
    static func cast<Value>(_ value: any Sendable, to type: Value.Type) -> Value? {
        castOpened(value, to: type)
    }

    /// `Stored` is the existential's dynamic type, read from the existential itself: no runtime
    /// call (`type(of:)` on an existential is one). When it is `Value`, the bit cast is a copy.
    /// Always inlined: called, it ran unspecialized.
    @inlinable
    @inline(__always)
    static func castOpened<Stored: Sendable, Value>(_ value: Stored, to type: Value.Type) -> Value? {
        if Stored.self == Value.self {
            return unsafeBitCast(value, to: Value.self)
        }
        return value as? Value
    }

    /// The error for a cached value of another type than the caller asked for.
    @usableFromInline
    static func typeMismatch(key: String, found value: any Sendable, expected: Any.Type) -> CacheError {
        CacheError(.typeMismatch, "the value cached for '\(key)' is a \(type(of: value)), not a \(expected)")
    }
}
