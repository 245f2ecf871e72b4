import Logging

extension HybridCache {
    /// What the coherence loop reacts to.
    enum CoherenceInput: Sendable {
        case event(BackplaneEvent)
        case heartbeat
        /// A synchronization that failed (Redis not answering yet) is due to be tried again.
        case retrySynchronize
    }

    /// The receiving side of the protocol: applies messages in sequence order, fills gaps from
    /// the log, replays after a reconnect, detects epoch changes, and checks the head on a
    /// heartbeat to catch a subscription that died silently. Inputs are handled one at a time;
    /// the backplane feeds `inputs` directly through its event sink.
    func runCoherence(
        _ backplane: any Backplane,
        inputs: AsyncStream<CoherenceInput>,
        input: AsyncStream<CoherenceInput>.Continuation
    ) async {
        await withDiscardingTaskGroup { group in
            group.addTask {
                while !Task.isCancelled {
                    do { try await self.clock.sleep(for: self.configuration.heartbeatInterval) } catch { return }
                    input.yield(.heartbeat)
                }
            }
            var transportSubscribed = false
            // After a failed synchronization: retried with backoff, sooner than the next
            // heartbeat, because the subscriber often reconnects before the command connection
            // and the head is then unavailable only for a moment.
            var retry = SynchronizationRetry(
                backoff: RetryBackoff(base: configuration.retryBackoffBase, cap: max(configuration.retryBackoffBase, configuration.heartbeatInterval))
            )
            for await next in inputs {
                let outcome: SynchronizationOutcome
                switch next {
                case .event(.subscribed):
                    transportSubscribed = true
                    outcome = await synchronize(backplane, reason: "subscribed")
                case .event(.disconnected(let reason)):
                    transportSubscribed = false
                    markDisconnected(reason: reason)
                    outcome = .notAttempted
                case .event(.message(let bytes)):
                    await receive(bytes, backplane)
                    outcome = .notAttempted
                case .heartbeat:
                    outcome = transportSubscribed ? await synchronize(backplane, reason: "heartbeat") : .notAttempted
                case .retrySynchronize:
                    retry.isScheduled = false
                    outcome = transportSubscribed ? await synchronize(backplane, reason: "retry") : .notAttempted
                }
                switch outcome {
                case .synchronized:
                    retry.backoff.reset()
                case .failed where transportSubscribed && !retry.isScheduled:
                    retry.isScheduled = true
                    let delay = retry.backoff.nextDelay()
                    group.addTask {
                        do { try await self.clock.sleep(for: delay) } catch { return }
                        input.yield(.retrySynchronize)
                    }
                case .failed, .notAttempted:
                    break
                }
            }
            group.cancelAll()
        }
    }

    /// Whether a synchronization brought the node up to the head.
    enum SynchronizationOutcome {
        case synchronized
        case failed
        case notAttempted
    }

    /// The pending early retry of a failed synchronization; at most one is scheduled at a time.
    private struct SynchronizationRetry {
        var backoff: RetryBackoff
        var isScheduled = false
    }

    private func markDisconnected(reason: String) {
        let wasSynchronized = coherence.withLock { state in
            defer { state.isSynchronized = false }
            return state.isSynchronized
        }
        if disconnectedSince.load(ordering: .relaxed) == .max {
            disconnectedSince.store(clock.now().nanoseconds, ordering: .relaxed)
        }
        if wasSynchronized {
            logger.warning("backplane disconnected", metadata: ["concord.reason": .string(reason)])
            eventHub.emit(.backplaneDisconnected(reason: reason))
        }
    }

    /// Brings this node up to the log's head: the first time, after a reconnect, and on each
    /// heartbeat. Whatever cannot be replayed is covered by expiring the whole L1.
    @discardableResult
    func synchronize(_ backplane: any Backplane, reason: String) async -> SynchronizationOutcome {
        let head: BackplaneHead
        do {
            head = try await backplane.head()
        } catch {
            logger.debug("backplane head unavailable", metadata: ["concord.reason": .string(reason), "concord.error": "\(error)"])
            markDisconnected(reason: "head unavailable: \(error)")
            return .failed
        }
        let state = coherence.withLock { $0 }
        if state.epoch == nil {
            // Nothing was ever applied: what L1 holds may have missed any write before now.
            if memory.count > 0 { expireAll(reason: "first synchronization with a non-empty L1") }
            coherence.withLock { $0.epoch = head.epoch; $0.lastSequence = head.sequence }
        } else if state.epoch != head.epoch {
            expireAll(reason: "epoch changed from \(state.epoch ?? "-") to \(head.epoch): Redis lost its data")
            coherence.withLock { $0.epoch = head.epoch; $0.lastSequence = head.sequence }
        } else if head.sequence > state.lastSequence {
            if reason == "heartbeat" {
                logger.debug("heartbeat found missed messages", metadata: ["concord.last": "\(state.lastSequence)", "concord.head": "\(head.sequence)"])
            }
            guard await replay(backplane, from: state.lastSequence + 1, through: head.sequence) else { return .failed }
        } else if head.sequence < state.lastSequence {
            expireAll(reason: "log sequence went back from \(state.lastSequence) to \(head.sequence)")
            coherence.withLock { $0.lastSequence = head.sequence }
        }
        let wasSynchronized = coherence.withLock { state in
            defer { state.isSynchronized = true }
            return state.isSynchronized
        }
        disconnectedSince.store(.max, ordering: .relaxed)
        if !wasSynchronized {
            // Redis answered: writes queued during the outage need not wait out their backoff.
            pending.retry()
            logger.info("backplane synchronized", metadata: ["concord.epoch": .string(head.epoch), "concord.seq": "\(head.sequence)"])
            eventHub.emit(.backplaneConnected)
        }
        return .synchronized
    }

    /// Reads `from...through` from the log and applies it. False if the log could not be read.
    private func replay(_ backplane: any Backplane, from: UInt64, through: UInt64) async -> Bool {
        guard from <= through else { return true }
        if through - from + 1 > UInt64(configuration.maxReplayLength) {
            expireAll(reason: "\(through - from + 1) missed messages exceed maxReplayLength")
            coherence.withLock { $0.lastSequence = through }
            return true
        }
        let read: BackplaneLogRead
        do {
            read = try await backplane.readLog(from: from, through: through)
        } catch {
            logger.debug("invalidation log unavailable", metadata: ["concord.error": "\(error)"])
            markDisconnected(reason: "log unavailable: \(error)")
            return false
        }
        counters.replays.add(1, ordering: .relaxed)
        metrics.replays.increment()
        switch read {
        case .trimmed:
            expireAll(reason: "the invalidation log was trimmed past sequence \(from)")
            coherence.withLock { $0.lastSequence = max($0.lastSequence, through) }
        case .messages(let raws):
            var applied = 0
            for raw in raws {
                guard let message = decodeCounted(raw) else { continue }
                let last = coherence.withLock { $0.lastSequence }
                guard message.sequence > last, message.sequence <= through else { continue }
                if message.sequence != last + 1 {
                    // A hole inside the log itself: it cannot be replayed.
                    expireAll(reason: "the invalidation log misses sequence \(last + 1)")
                }
                apply(message)
                applied += 1
            }
            let last = coherence.withLock { $0.lastSequence }
            if last < through {
                expireAll(reason: "the invalidation log ends at \(last), before \(through)")
                coherence.withLock { $0.lastSequence = through }
            }
            eventHub.emit(.replayed(count: applied))
            logger.debug("replayed missed messages", metadata: ["concord.count": "\(applied)", "concord.through": "\(through)"])
        }
        return true
    }

    /// Handles one message from the channel.
    private func receive(_ bytes: [UInt8], _ backplane: any Backplane) async {
        counters.received.add(1, ordering: .relaxed)
        metrics.messagesReceived.increment()
        guard let message = decodeCounted(bytes) else { return }
        let state = coherence.withLock { $0 }
        // Before the first synchronization the log replay will cover this message.
        guard state.isSynchronized, let epoch = state.epoch else { return }
        if message.epoch != epoch || message.sequence > state.lastSequence + 1 {
            // An epoch change or a gap: check against the head before acting, so a forged or
            // corrupt message cannot make the node expire its L1 or replay a bogus range.
            let head: BackplaneHead
            do { head = try await backplane.head() } catch {
                markDisconnected(reason: "head unavailable: \(error)")
                return
            }
            if message.epoch != head.epoch || message.sequence > head.sequence {
                ignore(reason: "message epoch \(message.epoch) seq \(message.sequence) does not match head \(head.epoch) seq \(head.sequence)")
                if head.epoch != epoch { await synchronize(backplane, reason: "epoch check") }
                return
            }
            if message.epoch != epoch {
                await synchronize(backplane, reason: "epoch changed")
                return
            }
            counters.gapsDetected.add(1, ordering: .relaxed)
            metrics.gapsDetected.increment()
            eventHub.emit(.gapDetected(from: state.lastSequence + 1, through: message.sequence - 1))
            logger.debug("gap in backplane messages", metadata: ["concord.last": "\(state.lastSequence)", "concord.seq": "\(message.sequence)"])
            guard await replay(backplane, from: state.lastSequence + 1, through: message.sequence - 1) else { return }
        }
        let last = coherence.withLock { $0.lastSequence }
        guard message.sequence == last + 1 else { return } // a duplicate, already applied by a replay
        apply(message)
    }

    private func decodeCounted(_ bytes: [UInt8]) -> BackplaneMessage? {
        do {
            return try BackplaneMessage.decode(bytes)
        } catch {
            ignore(reason: "\(error)")
            return nil
        }
    }

    private func ignore(reason: String) {
        counters.ignoredMessages.add(1, ordering: .relaxed)
        metrics.messagesIgnored.increment()
        eventHub.emit(.messageIgnored(reason: reason))
        logger.debug("backplane message ignored", metadata: ["concord.reason": .string(reason)])
    }

    /// Applies one in-order message and advances the position; a node's own messages only
    /// advance it.
    private func apply(_ message: BackplaneMessage) {
        versions.observe(message.version)
        coherence.withLock { $0.lastSequence = message.sequence }
        guard message.source != configuration.nodeID else { return }
        let lag = clock.wallClockMilliseconds() - message.version.milliseconds
        if lag >= 0 { metrics.propagationLag.recordMilliseconds(lag) }
        fenceFlights(kind: message.kind, key: message.key, version: message.version)
        applyToMemory(kind: message.kind, key: message.key, version: message.version, now: clock.now())
        eventHub.emit(.messageApplied(kind: message.kind, key: message.key, source: message.source))
        logger.trace("backplane message applied", metadata: [
            "concord.kind": "\(message.kind)", "concord.key": .string(message.key), "concord.seq": "\(message.sequence)",
        ])
    }

    /// Expires every L1 entry (kept for fail-safe) and fences every running load: the node may
    /// have missed invalidations it can no longer learn about.
    func expireAll(reason: String) {
        let fence = versions.current()
        fenceFlights(kind: .clearExpire, key: "", version: fence)
        memory.updateAll(now: clock.now()) { key, item in
            // This node's own write that has not reached L2 yet is the newest copy there is;
            // when it flushes, version fencing decides whether a newer write supersedes it.
            if let pendingVersion = pending.pendingVersion(forKey: key), pendingVersion == item.value.version {
                return .keep
            }
            if item.value.allowsFailSafe {
                item.value.isExpired = true
                item.value.isFailSafeValue = false
                return .keep
            }
            return .remove
        }
        counters.fullExpiries.add(1, ordering: .relaxed)
        metrics.fullExpiries.increment()
        eventHub.emit(.fullExpiry(reason: reason))
        logger.warning("expired the whole L1", metadata: ["concord.reason": .string(reason)])
    }
}
