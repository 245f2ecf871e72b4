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

    private func markDisconnected(reason: String) {
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
        headChecks.withLock { $0.lastHead = head; $0.checkedSinceApply = true; $0.isCheckOwed = false }
        let state = coherence.withLock { $0 }
        if state.epoch == nil {
            // Nothing was ever applied: what L1 holds may have missed any write before now.
            // Expected at start when calls filled L1 before the subscription was up: expired
            // all the same (they may have missed invalidations), but no cause for a warning.
            if memory.count > 0 { expireAll(reason: "first synchronization with a non-empty L1", level: .info) }
            coherence.withLock { $0.jump(to: head.sequence, epoch: head.epoch) }
            await learnWriteID(backplane)
        } else if state.epoch != head.epoch {
            expireAll(reason: "epoch changed from \(state.epoch ?? "-") to \(head.epoch): Redis lost its data")
            coherence.withLock { $0.jump(to: head.sequence, epoch: head.epoch) }
            await learnWriteID(backplane)
        } else {
            switch await verifyPosition(backplane, state: state, head: head) {
            case .failed:
                return .failed
            case .rolledBack(let why):
                instrumentation.rollbackDetected(reason: why, last: state.lastSequence, head: head.sequence)
                expireAll(reason: "history went back: \(why)")
                coherence.withLock { $0.jump(to: head.sequence) }
                await learnWriteID(backplane)
                await expireCopiesOlderThanTheRollback(newestApplied: state.newestApplied)
            case .matches:
                if head.sequence > state.lastSequence {
                    if reason == "heartbeat" {
                        logger.debug("heartbeat found missed messages", metadata: ["concord.last": "\(state.lastSequence)", "concord.head": "\(head.sequence)"])
                    }
                    guard await replay(backplane, from: state.lastSequence + 1, through: head.sequence) else { return .failed }
                }
            }
        }
        let wasSynchronized = coherence.withLock { state in
            defer { state.isSynchronized = true }
            return state.isSynchronized
        }
        disconnectedSince.store(.max, ordering: .relaxed)
        if !wasSynchronized {
            // Redis answered: writes queued during the outage need not wait out their backoff.
            pending.retry()
            instrumentation.backplaneSynchronized(epoch: head.epoch, sequence: head.sequence)
            readiness.wakeAll()
        }
        return .synchronized
    }

    /// Redis went back to an older state (a snapshot restore, a replica promoted while behind):
    /// the entries it holds now predate writes and invalidations it acknowledged and lost, and
    /// no node can tell which. So L2 is expired for every node with one `clearExpire` (fail-safe
    /// values kept), and the next read of each key goes to the origin. Its version is just after
    /// the newest message this node applied: every entry the restored state holds is older
    /// (the node applied the history up to its position, and the state went back before it),
    /// while writes made since the rollback are newer and stay fresh. Several nodes detecting
    /// the same rollback each write one; the newest marker wins.
    func expireCopiesOlderThanTheRollback(newestApplied: CacheVersion?) async {
        // Never past this node's wall clock: a forged message with a version in the future
        // must not make every write of the next minute read as expired.
        let now = CacheVersion(milliseconds: clock.wallClockMilliseconds(), counter: .max, node: "")
        let newest = min(newestApplied ?? now, now)
        // Just after it, in this node's name (a version names its writer: another node's id
        // would read as a copied configuration there).
        let fence = newest.counter < .max
            ? CacheVersion(milliseconds: newest.milliseconds, counter: newest.counter + 1, node: nodeID)
            : CacheVersion(milliseconds: Saturating.sum(newest.milliseconds, 1), counter: 0, node: nodeID)
        _ = versions.observe(fence)
        do {
            let version = try await mutate(.clearExpire, key: "", options: configuration.defaultEntryOptions, version: fence)
            logger.warning("expired every L2 entry written before the rollback", metadata: ["concord.version": "\(version)"])
        } catch {
            logger.error("could not expire the L2 entries that predate the rollback; they may be served until they expire", metadata: [
                "concord.error": "\(error)",
            ])
        }
    }

    /// The L2 lost data (a memcached server flushed or restarted): not only entries but the tag
    /// and clear markers it held, which hid entries kept on other servers. L1 is expired, and so
    /// is every L2 entry, for every node, with one `clearExpire`: the next read of each key goes
    /// to the origin instead of to an entry a lost marker used to hide.
    func noteDistributedDataLost(_ reason: String) {
        expireAll(reason: "L2 lost data: \(reason)")
        let started = runInBackground {
            do {
                let version = try await self.clear(allowFailSafe: true)
                self.logger.warning("expired every L2 entry: the L2 lost markers that may have hidden some", metadata: [
                    "concord.version": "\(version)", "concord.reason": .string(reason),
                ])
            } catch {
                self.logger.error("could not expire the L2 entries after the L2 lost data; entries a lost marker hid may be served until they expire", metadata: [
                    "concord.error": "\(error)",
                ])
            }
        }
        if !started { noteNotRunning("expiring L2 after it lost data") }
    }

    /// Whether the log at this node's position is the history it applied.
    enum PositionCheck {
        /// The entry there is the write applied (or the node did not know and now does), or it
        /// cannot be read (trimmed: the replay that follows handles that).
        case matches
        /// The head is below the position, or the entry there is another write.
        case rolledBack(String)
        /// Redis did not answer.
        case failed
    }

    /// Checks, within one epoch, that the head has not gone below this node's position and that
    /// the log entry at the position carries the write id the node applied there. A snapshot
    /// restore, a replica promoted while behind, or reused numbers fail one of the two, even when
    /// other writers have since pushed the head past the position.
    func verifyPosition(_ backplane: any Backplane, state: CoherenceState, head: BackplaneHead) async -> PositionCheck {
        let position = state.lastSequence
        if head.sequence < position {
            return .rolledBack("the log's head went back from \(position) to \(head.sequence)")
        }
        guard position > 0 else { return .matches }
        let read: BackplaneLogRead
        do {
            read = try await backplane.readLog(from: position, through: position)
        } catch {
            logger.debug("invalidation log unavailable", metadata: ["concord.error": "\(error)"])
            markDisconnected(reason: "log unavailable: \(error)")
            return .failed
        }
        guard case .messages(let raws) = read, let raw = raws.first,
              let entry = try? BackplaneMessage.decode(raw, maxKeyBytes: configuration.maxKeyBytes, authenticator: backplane.messageAuthenticator),
              entry.sequence == position
        else { return .matches }
        guard let expected = state.lastWriteID else {
            // The node reached this position without applying it: learn the write there now.
            coherence.withLock { current in
                if current.lastSequence == position, current.lastWriteID == nil { current.lastWriteID = entry.writeID }
            }
            return .matches
        }
        if entry.writeID != expected {
            return .rolledBack("the log entry at \(position) is another write than the one applied")
        }
        return .matches
    }

    /// After a jump to a position the node did not apply: reads the write there, so the next
    /// synchronization can tell whether history under this position changed. Left unknown when
    /// the entry cannot be read (an empty log, Redis not answering).
    private func learnWriteID(_ backplane: any Backplane) async {
        let position = coherence.withLock { $0.lastSequence }
        guard position > 0,
              case .messages(let raws)? = try? await backplane.readLog(from: position, through: position),
              let raw = raws.first,
              let entry = try? BackplaneMessage.decode(raw, maxKeyBytes: configuration.maxKeyBytes, authenticator: backplane.messageAuthenticator),
              entry.sequence == position
        else { return }
        coherence.withLock { current in
            if current.lastSequence == position, current.lastWriteID == nil { current.lastWriteID = entry.writeID }
        }
    }

    /// After a message: a head check deferred while suspicious messages piled up is due once
    /// the queue is empty.
    private func owedHeadCheck(_ backplane: any Backplane, transportSubscribed: Bool) async -> SynchronizationOutcome {
        guard transportSubscribed, queuedMessages.load(ordering: .relaxed) <= 0,
              headChecks.withLock({ $0.isCheckOwed })
        else { return .notAttempted }
        return await synchronize(backplane, reason: "coalesced head check")
    }

    /// Reads `from...through` from the log and applies it. False if the log could not be read.
    private func replay(_ backplane: any Backplane, from: UInt64, through: UInt64) async -> Bool {
        guard from <= through else { return true }
        if through - from + 1 > UInt64(configuration.maxReplayLength) {
            expireAll(reason: "\(through - from + 1) missed messages exceed maxReplayLength")
            coherence.withLock { $0.jump(to: through) }
            await learnWriteID(backplane)
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
        instrumentation.logRead()
        switch read {
        case .trimmed:
            expireAll(reason: "the invalidation log was trimmed past sequence \(from)")
            coherence.withLock { $0.jump(to: max($0.lastSequence, through)) }
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
                coherence.withLock { $0.jump(to: through) }
            }
            instrumentation.replayed(count: applied, through: through)
        }
        if coherence.withLock({ $0.lastWriteID == nil }) { await learnWriteID(backplane) }
        return true
    }

    /// Handles one message from the channel.
    private func receive(_ bytes: [UInt8], _ backplane: any Backplane) async {
        instrumentation.messageReceived()
        guard let message = decodeCounted(bytes) else { return }
        let state = coherence.withLock { $0 }
        // Before the first synchronization the log replay will cover this message.
        guard state.isSynchronized, let epoch = state.epoch else { return }
        if message.epoch != epoch || message.sequence > state.lastSequence + 1 {
            // An epoch change or a gap: check against the head before acting, so a forged or
            // corrupt message cannot make the node expire its L1 or replay a bogus range.
            guard let head = await headCovering(message, backplane) else { return }
            if message.epoch != head.epoch || message.sequence > head.sequence {
                ignore(reason: "message epoch \(message.epoch) seq \(message.sequence) does not match head \(head.epoch) seq \(head.sequence)")
                if head.epoch != epoch { await synchronize(backplane, reason: "epoch check") }
                return
            }
            if message.epoch != epoch {
                await synchronize(backplane, reason: "epoch changed")
                return
            }
            instrumentation.gapDetected(last: state.lastSequence, sequence: message.sequence)
            guard await replay(backplane, from: state.lastSequence + 1, through: message.sequence - 1) else { return }
        }
        let current = coherence.withLock { $0 }
        if message.sequence <= current.lastSequence {
            // A duplicate, already applied by a replay, unless the number was applied for
            // another write: history went back, or a forgery got in first. The log decides.
            if let applied = current.applied.writeID(at: message.sequence), applied != message.writeID {
                logger.warning("a sequence number arrived again for another write; checking the log", metadata: [
                    "concord.seq": "\(message.sequence)",
                ])
                if headChecks.withLock({ $0.checkedSinceApply }) && queuedMessages.load(ordering: .relaxed) > 0 {
                    headChecks.withLock { $0.isCheckOwed = true }
                } else {
                    await synchronize(backplane, reason: "sequence \(message.sequence) reused")
                }
            }
            return
        }
        guard message.sequence == current.lastSequence + 1 else { return }
        apply(message)
    }

    /// A head that shows whether a suspicious message's number was ever assigned: the last one
    /// read, if it already covers the message, else a fresh one, unless one was read since the
    /// last applied message and more messages are waiting. Then the message is ignored and one
    /// head check is owed for when the queue is empty: a flood of forged gaps or epochs costs
    /// one round trip, not one each. Nil when the message is ignored or Redis did not answer.
    private func headCovering(_ message: BackplaneMessage, _ backplane: any Backplane) async -> BackplaneHead? {
        let checks = headChecks.withLock { $0 }
        if let known = checks.lastHead, known.epoch == message.epoch, message.sequence <= known.sequence {
            return known
        }
        if checks.checkedSinceApply && queuedMessages.load(ordering: .relaxed) > 0 {
            headChecks.withLock { $0.isCheckOwed = true }
            ignore(reason: "message epoch \(message.epoch) seq \(message.sequence) is beyond the last head; one head check is owed")
            return nil
        }
        do {
            let head = try await backplane.head()
            headChecks.withLock { $0.lastHead = head; $0.checkedSinceApply = true }
            return head
        } catch {
            markDisconnected(reason: "head unavailable: \(error)")
            return nil
        }
    }

    /// Decodes a message or log entry and checks what it claims: key length, signature (with a
    /// backplane key) and a version no further ahead than `maxClockDrift`. Anything else is
    /// ignored and counted, and never advances the node's position.
    private func decodeCounted(_ bytes: [UInt8]) -> BackplaneMessage? {
        let message: BackplaneMessage
        do {
            message = try BackplaneMessage.decode(bytes, maxKeyBytes: configuration.maxKeyBytes, authenticator: backplane?.messageAuthenticator)
        } catch let error as CacheError where error.code == .unauthenticatedMessage {
            ignore(reason: "\(error)", unauthenticated: true)
            return nil
        } catch {
            ignore(reason: "\(error)")
            return nil
        }
        guard versions.isWithinDrift(message.version) else {
            ignore(reason: "version \(message.version) is more than maxClockDrift ahead of this node's clock", futureVersion: true)
            return nil
        }
        return message
    }

    private func ignore(reason: String, unauthenticated: Bool = false, futureVersion: Bool = false) {
        instrumentation.messageIgnored(reason: reason, unauthenticated: unauthenticated, futureVersion: futureVersion)
    }

    /// Applies one in-order message and advances the position; a node's own messages only
    /// advance it.
    private func apply(_ message: BackplaneMessage) {
        versions.observe(message.version)
        coherence.withLock { $0.advance(to: message.sequence, writeID: message.writeID, version: message.version) }
        headChecks.withLock { $0.checkedSinceApply = false }
        if message.source == configuration.nodeID {
            if message.instance == instanceID { return }
            noteSameNodeID(message)
        }
        let lag = Saturating.difference(clock.wallClockMilliseconds(), message.version.milliseconds)
        fenceFlights(kind: message.kind, key: message.key, version: message.version)
        applyToMemory(kind: message.kind, key: message.key, version: message.version, now: clock.now())
        instrumentation.messageApplied(message, lagMilliseconds: lag)
    }

    /// Another process wrote with this node's id. Its writes are applied like any other node's
    /// (skipping them would lose them). A write versioned after this cache started comes from a
    /// live process, not from a previous run of this node: that is a copied configuration,
    /// reported once as an error and in the statistics (the node then fails readiness).
    private func noteSameNodeID(_ message: BackplaneMessage) {
        guard message.version.milliseconds > createdAtWallMilliseconds else { return }
        if !duplicateNodeID.exchange(true, ordering: .relaxed) {
            logger.error("another live process uses this node's id; give every node its own id", metadata: [
                "concord.instance": "\(String(message.instance, radix: 16))",
                "concord.ownInstance": "\(String(instanceID, radix: 16))",
            ])
        }
    }

    /// Expires every L1 entry (kept for fail-safe) and fences every running load: the node may
    /// have missed invalidations it can no longer learn about.
    func expireAll(reason: String, level: Logger.Level = .warning) {
        let fence = versions.current()
        fenceFlights(kind: .clearExpire, key: "", version: fence)
        memory.updateAll(now: clock.now()) { key, item in
            // This node's own write that has not reached L2 yet is the newest copy there is;
            // when it flushes, version fencing decides whether a newer write supersedes it. An
            // origin fill waiting for L2 is no such write: a clear or invalidation this node
            // missed may be newer, so it is expired like the rest.
            if let pendingVersion = pending.queuedWriteVersion(forKey: key), pendingVersion == item.value.version {
                return .keep
            }
            if item.value.allowsFailSafe {
                item.value.isExpired = true
                item.value.isFailSafeValue = false
                return .keep
            }
            return .remove
        }
        instrumentation.fullExpiry(reason: reason, level: level)
    }
}
