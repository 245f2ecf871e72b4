import Logging

extension HybridCache {
    /// What the coherence loop reacts to.
    enum CoherenceInput: Sendable {
        case event(BackplaneEvent)
        case heartbeat
        /// A synchronization that failed (Redis not answering yet) is due to be tried again.
        case retrySynchronize
        /// Messages were dropped because the queue was full: resynchronize from the head.
        case queueOverflowed
    }

    /// The backplane's event sink: control events always get through; messages only while
    /// fewer than `coherenceQueueCapacity` wait, so a flood costs bounded memory. A dropped
    /// message is in the log (or was forged): the overflow input makes the loop resynchronize.
    func enqueueCoherenceInput(_ event: BackplaneEvent, into input: AsyncStream<CoherenceInput>.Continuation) {
        if case .message = event {
            let queued = queuedMessages.wrappingAdd(1, ordering: .relaxed).newValue
            if queued > configuration.coherenceQueueCapacity {
                queuedMessages.wrappingSubtract(1, ordering: .relaxed)
                if !queueOverflowed.exchange(true, ordering: .relaxed) {
                    instrumentation.coherenceQueueOverflowed()
                    input.yield(.queueOverflowed)
                }
                return
            }
        }
        input.yield(.event(event))
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
                    queuedMessages.wrappingSubtract(1, ordering: .relaxed)
                    await receive(bytes, backplane)
                    outcome = await owedHeadCheck(backplane, transportSubscribed: transportSubscribed)
                case .queueOverflowed:
                    queueOverflowed.store(false, ordering: .relaxed)
                    logger.warning("backplane messages arrived faster than they were applied; resynchronizing from the head", metadata: [
                        "concord.capacity": "\(configuration.coherenceQueueCapacity)",
                    ])
                    outcome = transportSubscribed ? await synchronize(backplane, reason: "queue overflow") : .notAttempted
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

    func markDisconnected(reason: String) {
        let wasSynchronized = coherence.withLock { state in
            defer { state.isSynchronized = false }
            return state.isSynchronized
        }
        if disconnectedSince.load(ordering: .relaxed) == .max {
            disconnectedSince.store(clock.now().nanoseconds, ordering: .relaxed)
        }
        if wasSynchronized {
            // The cache's own shutdown closes the subscription: not worth a warning.
            instrumentation.backplaneDisconnected(reason: reason, quietly: stopping.load(ordering: .relaxed) || Task.isCancelled)
        }
    }

}
