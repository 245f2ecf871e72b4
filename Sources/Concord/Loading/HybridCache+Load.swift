import Logging

extension HybridCache {
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
            if tracing != nil { CacheTracing.noteFlight(joined: !isLeader) }
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
    ///
    /// A read that shows Redis went back below what this node had applied (a snapshot restore,
    /// a replica promoted while behind) comes back expired: its copy may be older than values
    /// the node already served, and the node learns of the rollback only at its next
    /// synchronization, which the read asks for. The position is taken before the read, so a
    /// message applied while the read was in flight cannot make a current store look behind.
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
        let positionBefore = coherence.withLock { $0.readFence }
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
                guard var read, positionBefore.isStoreBehind(read.logHead) else { return read }
                read.isExpired = true
                let asked = requestSynchronization()
                instrumentation.distributedRolledBackRead(key: key, head: read.logHead?.sequence ?? 0, applied: positionBefore.lastSequence, asked: asked)
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

}
