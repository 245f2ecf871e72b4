/// The decisions of the receiving side of the coherence protocol, as a value: an input goes in
/// (a subscription, a disconnection, a message, a heartbeat, a head, a synchronization's
/// outcome), the action to perform comes out. It does no I/O; `HybridCache`'s coherence loop is
/// the driver that reads heads and the log, applies messages and expires L1 as told. So every
/// decision can be tested without a backplane (`CoherenceStateMachineTests`).
///
/// The loop's own state (whether the transport is subscribed, the retry of a failed
/// synchronization) lives here; the node's position in the log is `CoherenceState`, shared with
/// readers under a lock, and passed in.
struct CoherenceStateMachine: Sendable {
    /// What the loop reacts to.
    enum Input: Equatable, Sendable {
        case subscribed
        case disconnected(reason: String)
        case message
        /// Messages were dropped because the queue to the loop was full.
        case queueOverflowed
        case heartbeat
        /// A synchronization that failed is due to be tried again.
        case retryDue
        /// An L2 read found Redis below the node's position: history went back.
        case storeBehind
    }

    /// What the loop does next.
    enum Action: Equatable, Sendable {
        /// Read the head and bring the node up to it.
        case synchronize(reason: String)
        /// Note the lost subscription (the node counts as cut off from now).
        case markDisconnected(reason: String)
        /// Decode and handle the message, then run a head check if one is owed.
        case receive
        /// Nothing to do: not subscribed, so the next subscription synchronizes anyway.
        case wait
    }

    /// Whether the transport is subscribed: only then can a synchronization bring the node up
    /// to date (messages published meanwhile will arrive).
    private(set) var isSubscribed = false
    /// The delays between retries of a failed synchronization.
    private(set) var retryBackoff: RetryBackoff
    /// Whether a retry is scheduled; at most one is at a time.
    private(set) var isRetryScheduled = false

    init(retryBackoff: RetryBackoff) {
        self.retryBackoff = retryBackoff
    }

    /// The action for `input`.
    mutating func handle(_ input: Input) -> Action {
        switch input {
        case .subscribed:
            isSubscribed = true
            return .synchronize(reason: "subscribed")
        case .disconnected(let reason):
            isSubscribed = false
            return .markDisconnected(reason: reason)
        case .message:
            return .receive
        case .queueOverflowed:
            return isSubscribed ? .synchronize(reason: "queue overflow") : .wait
        case .heartbeat:
            return isSubscribed ? .synchronize(reason: "heartbeat") : .wait
        case .retryDue:
            isRetryScheduled = false
            return isSubscribed ? .synchronize(reason: "retry") : .wait
        case .storeBehind:
            return isSubscribed ? .synchronize(reason: "L2 below the applied position") : .wait
        }
    }

    /// After a synchronization (or a message, which may have run one): the delay after which to
    /// try again, when it failed while subscribed and no retry is scheduled yet. Sooner than the
    /// next heartbeat, because the subscriber often reconnects before the command connection and
    /// the head is then unavailable only for a moment. Nil: nothing to schedule.
    mutating func finished(_ outcome: SynchronizationOutcome, using generator: inout some RandomNumberGenerator) -> Duration? {
        switch outcome {
        case .synchronized:
            retryBackoff.reset()
            return nil
        case .failed where isSubscribed && !isRetryScheduled:
            isRetryScheduled = true
            return retryBackoff.nextDelay(using: &generator)
        case .failed, .notAttempted:
            return nil
        }
    }

    // MARK: - Synchronization

    /// Whether a synchronization brought the node up to the head.
    enum SynchronizationOutcome: Equatable, Sendable {
        case synchronized
        case failed
        case notAttempted
    }

    /// How a synchronization goes, once the head is known.
    enum SynchronizationPlan: Equatable, Sendable {
        /// Nothing was ever applied: expire L1 if it holds anything, and start at the head.
        case adoptFirstEpoch
        /// Redis lost its data (a new epoch): expire L1 and start at the head.
        case epochChanged(from: String)
        /// The same history: check the position, then replay up to the head.
        case verifyPosition
    }

    static func plan(state: CoherenceState, head: BackplaneHead) -> SynchronizationPlan {
        guard let epoch = state.epoch else { return .adoptFirstEpoch }
        return epoch == head.epoch ? .verifyPosition : .epochChanged(from: epoch)
    }

    /// The part of the position check that needs no log entry: the head went below the
    /// position (history went back), or the node is at 0 (nothing to check). Nil: read the
    /// log entry at the position and judge it with `judgePosition`.
    static func checkPositionAgainstHead(state: CoherenceState, head: BackplaneHead) -> PositionVerdict? {
        let position = state.lastSequence
        if head.sequence < position {
            return .rolledBack("the log's head went back from \(position) to \(head.sequence)")
        }
        return position == 0 ? .matches : nil
    }

    /// What the log says about the node's position.
    enum PositionVerdict: Equatable, Sendable {
        /// The entry there is the write applied, or it cannot be read (trimmed: the replay that
        /// follows handles that).
        case matches
        /// The node reached this position without applying it: it learns the write there.
        case learn(writeID: UInt64)
        /// The head is below the position, or the entry there is another write.
        case rolledBack(String)
    }

    /// Judges the log entry read at the node's position (nil when there is none, or it cannot
    /// be decoded, or it is at another sequence).
    static func judgePosition(state: CoherenceState, entry: BackplaneMessage?) -> PositionVerdict {
        guard let entry, entry.sequence == state.lastSequence else { return .matches }
        guard let expected = state.lastWriteID else { return .learn(writeID: entry.writeID) }
        return entry.writeID == expected ? .matches : .rolledBack("the log entry at \(state.lastSequence) is another write than the one applied")
    }

    /// After the position matched: the range to replay to reach the head, if any.
    static func replayRange(state: CoherenceState, head: BackplaneHead) -> ClosedRange<UInt64>? {
        head.sequence > state.lastSequence ? (state.lastSequence + 1)...head.sequence : nil
    }

    // MARK: - Messages

    /// What to do with a decoded message, given the node's position.
    enum MessageDecision: Equatable, Sendable {
        /// Before the first synchronization: the log replay will cover it.
        case waitForSynchronization
        /// Another epoch, or a gap before it: the head decides (`judgeAgainstHead`), so a
        /// forged or corrupt message cannot make the node expire L1 or replay a bogus range.
        case checkHead
        /// Already applied (by a replay).
        case duplicate
        /// A number already applied, for another write: history went back or a forgery got in
        /// first; the log decides.
        case reusedSequence
        /// The next message: apply it.
        case apply
        /// Still beyond the next number after its gap was replayed: left to the next
        /// synchronization.
        case outOfOrder
    }

    static func classify(_ message: BackplaneMessage, state: CoherenceState) -> MessageDecision {
        guard state.isSynchronized, let epoch = state.epoch else { return .waitForSynchronization }
        if message.epoch != epoch || message.sequence > state.lastSequence + 1 { return .checkHead }
        return classifyInOrder(message, state: state)
    }

    /// `classify` for a message of the current epoch and at most the next number (what is
    /// left after a gap was replayed).
    static func classifyInOrder(_ message: BackplaneMessage, state: CoherenceState) -> MessageDecision {
        if message.sequence <= state.lastSequence {
            if let applied = state.applied.writeID(at: message.sequence), applied != message.writeID {
                return .reusedSequence
            }
            return .duplicate
        }
        return message.sequence == state.lastSequence + 1 ? .apply : .outOfOrder
    }

    /// What the head says about a message that `classify` sent to it.
    enum HeadVerdict: Equatable, Sendable {
        /// The head never assigned that number in that epoch: ignore the message, and
        /// resynchronize when the head itself is in another epoch than the node.
        case ignore(reason: String, resynchronize: Bool)
        /// The message's epoch is the head's new one: resynchronize (which expires L1).
        case epochChanged
        /// A real gap: replay it from the log, then handle the message.
        case replayGap(ClosedRange<UInt64>)
    }

    static func judgeAgainstHead(_ message: BackplaneMessage, head: BackplaneHead, state: CoherenceState) -> HeadVerdict {
        if message.epoch != head.epoch || message.sequence > head.sequence {
            return .ignore(
                reason: "message epoch \(message.epoch) seq \(message.sequence) does not match head \(head.epoch) seq \(head.sequence)",
                resynchronize: head.epoch != state.epoch
            )
        }
        if message.epoch != state.epoch { return .epochChanged }
        return .replayGap((state.lastSequence + 1)...(message.sequence - 1))
    }
}
