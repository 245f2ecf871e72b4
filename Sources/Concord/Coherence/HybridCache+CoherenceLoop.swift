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
            // The decisions are the state machine's; this loop performs them.
            var machine = CoherenceStateMachine(
                retryBackoff: RetryBackoff(base: configuration.retryBackoffBase, cap: max(configuration.retryBackoffBase, configuration.heartbeatInterval))
            )
            var random = SystemRandomNumberGenerator()
            for await next in inputs {
                var message: [UInt8] = []
                let happened: CoherenceStateMachine.Input
                switch next {
                case .event(.subscribed):
                    happened = .subscribed
                case .event(.disconnected(let reason)):
                    happened = .disconnected(reason: reason)
                case .event(.message(let bytes)):
                    queuedMessages.wrappingSubtract(1, ordering: .relaxed)
                    message = bytes
                    happened = .message
                case .queueOverflowed:
                    queueOverflowed.store(false, ordering: .relaxed)
                    logger.warning("backplane messages arrived faster than they were applied; resynchronizing from the head", metadata: [
                        "concord.capacity": "\(configuration.coherenceQueueCapacity)",
                    ])
                    happened = .queueOverflowed
                case .heartbeat:
                    happened = .heartbeat
                case .retrySynchronize:
                    happened = .retryDue
                }
                let outcome: SynchronizationOutcome
                switch machine.handle(happened) {
                case .synchronize(let reason):
                    outcome = await synchronize(backplane, reason: reason)
                case .markDisconnected(let reason):
                    markDisconnected(reason: reason)
                    outcome = .notAttempted
                case .receive:
                    await receive(message, backplane)
                    outcome = await owedHeadCheck(backplane, transportSubscribed: machine.isSubscribed)
                case .wait:
                    outcome = .notAttempted
                }
                if let delay = machine.finished(outcome, using: &random) {
                    group.addTask {
                        do { try await self.clock.sleep(for: delay) } catch { return }
                        input.yield(.retrySynchronize)
                    }
                }
            }
            group.cancelAll()
        }
    }

    typealias SynchronizationOutcome = CoherenceStateMachine.SynchronizationOutcome

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
