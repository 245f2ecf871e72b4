import Logging

extension HybridCache {
    /// Brings this node up to the log's head: the first time, after a reconnect, and on each
    /// heartbeat. Whatever cannot be replayed is covered by expiring the whole L1.
    @discardableResult
    func synchronize(_ backplane: any Backplane, reason: String) async -> SynchronizationOutcome {
        let head: BackplaneHead
        let asked = clock.now().nanoseconds
        do {
            head = try await backplane.head()
        } catch {
            logger.debug("backplane head unavailable", metadata: ["concord.reason": .string(reason), "concord.error": "\(error)"])
            markDisconnected(reason: "head unavailable: \(error)")
            return .failed
        }
        headChecks.withLock { $0.lastHead = head; $0.checkedSinceApply = true; $0.isCheckOwed = false }
        followHighestStoredVersion(head)
        let state = coherence.withLock { $0 }
        switch CoherenceStateMachine.plan(state: state, head: head) {
        case .adoptFirstEpoch:
            // Nothing was ever applied: what L1 holds may have missed any write before now.
            // Expected at start when calls filled L1 before the subscription was up: expired
            // all the same (they may have missed invalidations), but no cause for a warning.
            if memory.count > 0 { expireAll(reason: "first synchronization with a non-empty L1", level: .info) }
            coherence.withLock { $0.jump(to: head.sequence, epoch: head.epoch) }
            await learnWriteID(backplane)
        case .epochChanged(let old):
            expireAll(reason: "epoch changed from \(old) to \(head.epoch): Redis lost its data")
            coherence.withLock { $0.jump(to: head.sequence, epoch: head.epoch) }
            await learnWriteID(backplane)
        case .verifyPosition:
            switch await verifyPosition(backplane, state: state, head: head) {
            case nil:
                return .failed
            case .rolledBack(let why)?:
                instrumentation.rollbackDetected(reason: why, last: state.lastSequence, head: head.sequence)
                expireAll(reason: "history went back: \(why)")
                // Past this jump a read no longer sees a head below the position, yet Redis
                // still holds the copies that predate the rollback until the marker is written.
                coherence.withLock { $0.jump(to: head.sequence); $0.isExpiringRollback = true }
                await learnWriteID(backplane)
                await expireCopiesOlderThanTheRollback(newestApplied: state.newestApplied)
                coherence.withLock { $0.isExpiringRollback = false }
            case .matches?, .learn?:
                if let range = CoherenceStateMachine.replayRange(state: state, head: head) {
                    if reason == "heartbeat" {
                        logger.debug("heartbeat found missed messages", metadata: ["concord.last": "\(state.lastSequence)", "concord.head": "\(head.sequence)"])
                    }
                    guard await replay(backplane, from: range.lowerBound, through: range.upperBound) else { return .failed }
                }
            }
        }
        let wasSynchronized = coherence.withLock { state in
            defer { state.isSynchronized = true }
            return state.isSynchronized
        }
        lastConfirmedCurrent.store(asked, ordering: .relaxed)
        disconnectedSince.store(.max, ordering: .relaxed)
        if !wasSynchronized {
            // Redis answered: writes queued during the outage need not wait out their backoff.
            pending.retry()
            instrumentation.backplaneSynchronized(epoch: head.epoch, sequence: head.sequence)
            readiness.wakeAll()
        }
        return .synchronized
    }

    /// Moves the clock past the highest version stored in L2, as past a message's: the head
    /// is read at start, on every reconnect and heartbeat, so a node restarted with its wall
    /// clock set back (or one whose clock is slow) stops versioning its writes, queued and
    /// background ones included, before sets already stored. A version beyond `maxClockDrift`
    /// is not followed (forged or corrupt), as for messages.
    func followHighestStoredVersion(_ head: BackplaneHead) {
        guard let highest = head.highestStoredVersion else { return }
        _ = versions.observe(highest)
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
        // Never past what this node's clock has reached: its wall clock, or a lead it took from
        // a version within maxClockDrift (while the lead lasts, the copies to expire carry
        // versions past the wall clock). A version further ahead, forged or corrupt, was never
        // taken, so it cannot make every later write read as expired.
        let reached = max(clock.wallClockMilliseconds(), versions.current().milliseconds)
        let now = CacheVersion(milliseconds: reached, counter: .max, node: "")
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

    /// Checks, within one epoch, that the head has not gone below this node's position and that
    /// the log entry at the position carries the write id the node applied there. A snapshot
    /// restore, a replica promoted while behind, or reused numbers fail one of the two, even when
    /// other writers have since pushed the head past the position. A write the node reached
    /// without applying it is learnt here. Nil when Redis did not answer.
    func verifyPosition(_ backplane: any Backplane, state: CoherenceState, head: BackplaneHead) async -> CoherenceStateMachine.PositionVerdict? {
        if let verdict = CoherenceStateMachine.checkPositionAgainstHead(state: state, head: head) { return verdict }
        let position = state.lastSequence
        let read: BackplaneLogRead
        do {
            read = try await backplane.readLog(from: position, through: position)
        } catch {
            logger.debug("invalidation log unavailable", metadata: ["concord.error": "\(error)"])
            markDisconnected(reason: "log unavailable: \(error)")
            return nil
        }
        var entry: BackplaneMessage?
        if case .messages(let raws) = read, let raw = raws.first {
            entry = try? BackplaneMessage.decode(raw, maxKeyBytes: configuration.maxKeyBytes, authenticator: backplane.messageAuthenticator)
        }
        let verdict = CoherenceStateMachine.judgePosition(state: state, entry: entry)
        if case .learn(let writeID) = verdict {
            coherence.withLock { current in
                if current.lastSequence == position, current.lastWriteID == nil { current.lastWriteID = writeID }
            }
        }
        return verdict
    }

    /// After a jump to a position the node did not apply: reads the write there, so the next
    /// synchronization can tell whether history under this position changed. Left unknown when
    /// the entry cannot be read (an empty log, Redis not answering).
    func learnWriteID(_ backplane: any Backplane) async {
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
    func owedHeadCheck(_ backplane: any Backplane, transportSubscribed: Bool) async -> SynchronizationOutcome {
        guard transportSubscribed, queuedMessages.load(ordering: .relaxed) <= 0,
              headChecks.withLock({ $0.isCheckOwed })
        else { return .notAttempted }
        return await synchronize(backplane, reason: "coalesced head check")
    }

}
