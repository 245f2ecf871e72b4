import Logging

extension HybridCache {
    // MARK: - Pending writes

    /// L2 answered or reconnected: Redis is back, so queued writes need not wait out their
    /// backoff. The backplane's resynchronization says the same, but its subscriber connection
    /// may come back later than the command connection.
    func noteDistributedReachable() {
        if !pending.isEmpty { pending.retry() }
    }

    /// Flushes pending writes whenever there are some, retrying with backoff while L2 fails.
    func runPendingWrites() async {
        var backoff = RetryBackoff(base: configuration.retryBackoffBase, cap: configuration.retryBackoffCap)
        for await _ in pending.signals {
            while !pending.isEmpty, !Task.isCancelled {
                if await flushPendingBatch() {
                    backoff.reset()
                } else {
                    // Sleep out the backoff, unless the backplane reports Redis is back first.
                    let deadline = clock.now() + backoff.nextDelay()
                    do {
                        _ = try await withDeadline(deadline, clock: clock) { try await self.pending.waitForRetry() }
                    } catch {
                        return
                    }
                }
            }
        }
    }

    /// Applies one batch; false when L2 failed (the rest stays queued).
    private func flushPendingBatch() async -> Bool {
        let batch = pending.batch(limit: 64)
        var flushed = 0
        for (mutation, target) in batch {
            do {
                try await send(mutation, to: target)
                pending.markDone(mutation)
                flushed += 1
            } catch {
                instrumentation.pendingWriteFailed(key: mutation.key, error: error)
                noteOutOfMemory(error, key: mutation.key)
                instrumentation.pendingWritesFlushed(count: flushed)
                return false
            }
        }
        instrumentation.pendingWritesFlushed(count: flushed)
        return true
    }

    /// On graceful shutdown: flush what is pending, for at most `timeout`.
    func drainPendingWrites(timeout: Duration) async {
        guard !pending.isEmpty else { return }
        let deadline = clock.now() + timeout
        instrumentation.shutdownDrainStarted(pending: pending.count)
        struct StillPending: Error {}
        _ = try? await Retry.run(
            backoff: .fixed(.milliseconds(50)),
            sleep: { try? await self.clock.sleep(for: $0) },
            isRetryable: { _ in self.clock.now() < deadline }
        ) { _ in
            while !pending.isEmpty, clock.now() < deadline {
                guard await flushPendingBatch() else { throw StillPending() }
            }
        }
        if !pending.isEmpty {
            instrumentation.shutdownDrainIncomplete(pending: pending.count)
        }
    }

    /// Waits until no write is pending or `timeout` passes; true when none is pending.
    public func waitForPendingWrites(timeout: Duration) async -> Bool {
        struct TimedOut: Error {}
        let deadline = clock.now() + timeout
        // A condition that throws ends the wait with false.
        return await Retry.until(
            backoff: .fixed(.milliseconds(5)),
            limit: .unlimited,
            sleep: { try await self.clock.sleep(for: $0) }
        ) {
            if pending.isEmpty { return true }
            if clock.now() >= deadline { throw TimedOut() }
            return false
        }
    }

    /// Number of L2 writes waiting to be applied.
    public var pendingWriteCount: Int { pending.count }
}
