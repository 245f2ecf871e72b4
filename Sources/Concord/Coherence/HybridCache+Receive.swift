import Logging

extension HybridCache {
    /// Reads `from...through` from the log and applies it. False if the log could not be read.
    func replay(_ backplane: any Backplane, from: UInt64, through: UInt64) async -> Bool {
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
    func receive(_ bytes: [UInt8], _ backplane: any Backplane) async {
        instrumentation.messageReceived()
        guard let message = decodeCounted(bytes) else { return }
        await receive(message, backplane)
    }

    /// Handles one message from the channel, counted and decoded.
    func receive(_ message: BackplaneMessage, _ backplane: any Backplane) async {
        let state = coherence.withLock { $0 }
        var decision = CoherenceStateMachine.classify(message, state: state)
        if decision == .checkHead {
            // An epoch change or a gap: check against the head before acting, so a forged or
            // corrupt message cannot make the node expire its L1 or replay a bogus range.
            guard let head = await headCovering(message, backplane) else { return }
            switch CoherenceStateMachine.judgeAgainstHead(message, head: head, state: state) {
            case .ignore(let reason, let resynchronize):
                ignore(reason: reason)
                if resynchronize { await synchronize(backplane, reason: "epoch check") }
                return
            case .epochChanged:
                await synchronize(backplane, reason: "epoch changed")
                return
            case .replayGap(let gap):
                instrumentation.gapDetected(last: state.lastSequence, sequence: message.sequence)
                guard await replay(backplane, from: gap.lowerBound, through: gap.upperBound) else { return }
            }
            decision = CoherenceStateMachine.classifyInOrder(message, state: coherence.withLock { $0 })
        }
        switch decision {
        case .apply:
            apply(message)
        case .reusedSequence:
            // Already applied for another write: history went back, or a forgery got in first.
            // The log decides.
            logger.warning("a sequence number arrived again for another write; checking the log", metadata: [
                "concord.seq": "\(message.sequence)",
            ])
            if headChecks.withLock({ $0.checkedSinceApply }) && queuedMessages.load(ordering: .relaxed) > 0 {
                headChecks.withLock { $0.isCheckOwed = true }
            } else {
                await synchronize(backplane, reason: "sequence \(message.sequence) reused")
            }
        case .waitForSynchronization, .duplicate, .outOfOrder, .checkHead:
            // Before the first synchronization the log replay covers it; a duplicate was
            // applied by a replay; past a replayed gap the next synchronization takes over.
            return
        }
    }

    /// A head that shows whether a suspicious message's number was ever assigned: the last one
    /// read, if it already covers the message, else a fresh one, unless one was read since the
    /// last applied message and more messages are waiting. Then the message is ignored and one
    /// head check is owed for when the queue is empty: a flood of forged gaps or epochs costs
    /// one round trip, not one each. Nil when the message is ignored or Redis did not answer.
    func headCovering(_ message: BackplaneMessage, _ backplane: any Backplane) async -> BackplaneHead? {
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
            followHighestStoredVersion(head)
            return head
        } catch {
            markDisconnected(reason: "head unavailable: \(error)")
            return nil
        }
    }

    /// Decodes a message or log entry and checks what it claims: key length, signature (with a
    /// backplane key) and a version no further ahead than `maxClockDrift`. Anything else is
    /// ignored and counted, and never advances the node's position.
    func decodeCounted(_ bytes: [UInt8]) -> BackplaneMessage? {
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

    func ignore(reason: String, unauthenticated: Bool = false, futureVersion: Bool = false) {
        instrumentation.messageIgnored(reason: reason, unauthenticated: unauthenticated, futureVersion: futureVersion)
    }

    /// Applies one in-order message and advances the position; a node's own messages only
    /// advance it.
    func apply(_ message: BackplaneMessage) {
        let span = tracing?.startApply(message)
        defer { span?.end() }
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
    func noteSameNodeID(_ message: BackplaneMessage) {
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
