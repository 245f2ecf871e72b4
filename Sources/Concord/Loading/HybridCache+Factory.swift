import Logging

extension HybridCache {
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
        let factory = tracing.map { $0.traced(factory, key: key) } ?? factory
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

    func startEagerRefresh<Value: Codable & Sendable>(
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
