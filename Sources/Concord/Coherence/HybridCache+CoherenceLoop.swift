import Logging

extension HybridCache {
    /// What the coherence loop reacts to.
    enum CoherenceInput: Sendable {
        case event(BackplaneEvent)
        /// A message already counted and decoded where it arrived, that needs the loop (a head
        /// check, a replay, or a head check owed).
        case decoded(BackplaneMessage)
        case heartbeat
        /// A synchronization that failed (Redis not answering yet) is due to be tried again.
        case retrySynchronize
        /// Messages were dropped because the queue was full: resynchronize from the head.
        case queueOverflowed
        /// An L2 read found Redis below the node's position (`requestSynchronization`).
        case storeBehind
    }

    /// The backplane's event sink: control events always get through; messages only while
    /// fewer than `coherenceQueueCapacity` wait, so a flood costs bounded memory. A dropped
    /// message is in the log (or was forged): the overflow input makes the loop resynchronize.
    ///
    /// While the loop has nothing queued or in hand, a message is handled here, on the thread
    /// that received it, without waking the loop's task (see `CoherenceInbox`).
    func enqueueCoherenceInput(_ event: BackplaneEvent, into inbox: CoherenceInbox) {
        if case .message(let bytes) = event {
            if inbox.handleIfIdle({ receiveWhereItArrived(bytes) }) { return }
            guard admitQueuedMessage(into: inbox) else { return }
        }
        inbox.send(.event(event))
    }

    /// Counts a message about to be queued against `coherenceQueueCapacity`; false when it
    /// must be dropped (the first drop since the last resynchronization queues the overflow).
    private func admitQueuedMessage(into inbox: CoherenceInbox) -> Bool {
        let queued = queuedMessages.wrappingAdd(1, ordering: .relaxed).newValue
        guard queued > configuration.coherenceQueueCapacity else { return true }
        queuedMessages.wrappingSubtract(1, ordering: .relaxed)
        if !queueOverflowed.exchange(true, ordering: .relaxed) {
            instrumentation.coherenceQueueOverflowed()
            inbox.send(.queueOverflowed)
        }
        return false
    }

    /// Handles a message as the loop would when it is the next in order, or one the loop would
    /// only drop; nil when done. Anything that needs Redis (a gap or another epoch to check
    /// against the head, a reused number, a head check owed) goes to the loop, decoded, and
    /// counts as queued like any message there.
    private func receiveWhereItArrived(_ bytes: [UInt8]) -> CoherenceInput? {
        instrumentation.messageReceived()
        guard let message = decodeCounted(bytes) else { return nil }
        switch CoherenceStateMachine.classify(message, state: coherence.withLock { $0 }) {
        case .apply where !headChecks.withLock({ $0.isCheckOwed }):
            apply(message)
            return nil
        case .waitForSynchronization, .duplicate, .outOfOrder:
            return nil
        case .apply, .checkHead, .reusedSequence:
            queuedMessages.wrappingAdd(1, ordering: .relaxed)
            return .decoded(message)
        }
    }

    /// The receiving side of the protocol: applies messages in sequence order, fills gaps from
    /// the log, replays after a reconnect, detects epoch changes, and checks the head on a
    /// heartbeat to catch a subscription that died silently. Inputs are handled one at a time;
    /// the backplane feeds `inbox` through its event sink, which handles an in-order message
    /// itself while the loop is idle.
    func runCoherence(
        _ backplane: any Backplane,
        inbox: CoherenceInbox
    ) async {
        await withDiscardingTaskGroup { group in
            group.addTask {
                while !Task.isCancelled {
                    do { try await self.clock.sleep(for: self.configuration.heartbeatInterval) } catch { return }
                    inbox.send(.heartbeat)
                }
            }
            // The decisions are the state machine's; this loop performs them.
            var machine = CoherenceStateMachine(
                retryBackoff: RetryBackoff(base: configuration.retryBackoffBase, cap: max(configuration.retryBackoffBase, configuration.heartbeatInterval))
            )
            var random = SystemRandomNumberGenerator()
            for await next in inbox.inputs {
                defer { inbox.finished() }
                var message: [UInt8] = []
                var decoded: BackplaneMessage?
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
                case .decoded(let received):
                    queuedMessages.wrappingSubtract(1, ordering: .relaxed)
                    decoded = received
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
                case .storeBehind:
                    synchronizationRequested.store(false, ordering: .relaxed)
                    happened = .storeBehind
                }
                let outcome: SynchronizationOutcome
                switch machine.handle(happened) {
                case .synchronize(let reason):
                    outcome = await synchronize(backplane, reason: reason)
                case .markDisconnected(let reason):
                    markDisconnected(reason: reason)
                    outcome = .notAttempted
                case .receive:
                    if let decoded {
                        await receive(decoded, backplane)
                    } else {
                        await receive(message, backplane)
                    }
                    outcome = await owedHeadCheck(backplane, transportSubscribed: machine.isSubscribed)
                case .wait:
                    outcome = .notAttempted
                }
                if let delay = machine.finished(outcome, using: &random) {
                    group.addTask {
                        do { try await self.clock.sleep(for: delay) } catch { return }
                        inbox.send(.retrySynchronize)
                    }
                }
            }
            group.cancelAll()
        }
    }

    typealias SynchronizationOutcome = CoherenceStateMachine.SynchronizationOutcome

    /// Asks the coherence loop to synchronize now rather than at the next heartbeat: an L2 read
    /// found Redis below the node's position. One request at a time, however many reads find it;
    /// true when this call made it.
    @discardableResult
    func requestSynchronization() -> Bool {
        guard backplane != nil, runActive.load(ordering: .relaxed),
              !synchronizationRequested.exchange(true, ordering: .relaxed)
        else { return false }
        coherenceInbox.send(.storeBehind)
        return true
    }

    func markDisconnected(reason: String) {
        let wasSynchronized = coherence.withLock { state in
            defer { state.isSynchronized = false }
            return state.isSynchronized
        }
        if disconnectedSince.load(ordering: .relaxed) == .max {
            // Counted from the last time the node was known current: a link that went deaf is
            // noticed only when a heartbeat's head check times out, up to a heartbeat and a
            // command timeout later, and writes it missed meanwhile count toward
            // `maxDisconnectedStaleness` from when they were missed.
            let confirmed = lastConfirmedCurrent.load(ordering: .relaxed)
            disconnectedSince.store(min(clock.now().nanoseconds, confirmed), ordering: .relaxed)
        }
        if wasSynchronized {
            // The cache's own shutdown closes the subscription: not worth a warning.
            instrumentation.backplaneDisconnected(reason: reason, quietly: stopping.load(ordering: .relaxed) || Task.isCancelled)
        }
    }
}
