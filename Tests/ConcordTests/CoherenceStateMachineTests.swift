@testable @_spi(ConcordBackend) import Concord
import Testing

/// The coherence receiver's decisions, fed inputs without any backplane: no Redis, no in-memory
/// bus, no clock. Each test is one situation and the action or verdict the driver must perform.
@Suite("Coherence state machine, without a backplane")
struct CoherenceStateMachineTests {
    /// The same word every time, so backoff delays are their ceilings' known fraction.
    struct FixedGenerator: RandomNumberGenerator {
        mutating func next() -> UInt64 { .max }
    }

    static func machine() -> CoherenceStateMachine {
        CoherenceStateMachine(retryBackoff: RetryBackoff(base: .milliseconds(100), cap: .seconds(1)))
    }

    static func message(epoch: String = "e1", sequence: UInt64, writeID: UInt64 = 7) -> BackplaneMessage {
        BackplaneMessage(
            epoch: epoch, sequence: sequence, kind: .set, key: "k",
            version: CacheVersion(milliseconds: 1_000, counter: 0, node: "n2"), writeID: writeID)
    }

    /// A node synchronized in epoch e1 at `last`, having applied write `writeID` there.
    static func synchronized(at last: UInt64, writeID: UInt64 = 7) -> CoherenceState {
        var state = CoherenceState()
        state.epoch = "e1"
        state.advance(to: last, writeID: writeID, version: CacheVersion(milliseconds: 1_000, counter: 0, node: "n2"))
        state.isSynchronized = true
        return state
    }

    // MARK: - The loop

    @Test func aSubscriptionSynchronizesAndHeartbeatsCheckOnlyWhileSubscribed() {
        var machine = Self.machine()
        #expect(machine.handle(.heartbeat) == .wait)
        #expect(machine.handle(.queueOverflowed) == .wait)
        #expect(machine.handle(.subscribed) == .synchronize(reason: "subscribed"))
        #expect(machine.handle(.heartbeat) == .synchronize(reason: "heartbeat"))
        #expect(machine.handle(.queueOverflowed) == .synchronize(reason: "queue overflow"))
        #expect(machine.handle(.message) == .receive)
        #expect(machine.handle(.disconnected(reason: "reset")) == .markDisconnected(reason: "reset"))
        #expect(!machine.isSubscribed)
        #expect(machine.handle(.heartbeat) == .wait)
    }

    @Test func aFailedSynchronizationIsRetriedOnceAtATimeWithGrowingBackoffUntilOneSucceeds() {
        var machine = Self.machine()
        var random = FixedGenerator()
        _ = machine.handle(.subscribed)
        let first = machine.finished(.failed, using: &random)
        #expect(first != nil && first! <= .milliseconds(100))
        // Already scheduled: a second failure (a heartbeat's) schedules nothing more.
        #expect(machine.finished(.failed, using: &random) == nil)
        #expect(machine.handle(.retryDue) == .synchronize(reason: "retry"))
        let second = machine.finished(.failed, using: &random)
        #expect(second != nil && second! <= .milliseconds(200) && second! > first!)
        #expect(machine.handle(.retryDue) == .synchronize(reason: "retry"))
        #expect(machine.finished(.synchronized, using: &random) == nil)
        #expect(machine.retryBackoff.attempt == 0)
    }

    @Test func noRetryIsScheduledWhileUnsubscribedOrForWhatWasNotAttempted() {
        var machine = Self.machine()
        var random = FixedGenerator()
        #expect(machine.finished(.failed, using: &random) == nil)
        _ = machine.handle(.subscribed)
        #expect(machine.finished(.notAttempted, using: &random) == nil)
        _ = machine.handle(.disconnected(reason: "gone"))
        #expect(machine.handle(.retryDue) == .wait)
    }

    @Test func anL2ReadBelowThePositionSynchronizesWhileSubscribedAndWaitsOtherwise() {
        var machine = Self.machine()
        #expect(machine.handle(.storeBehind) == .wait)
        _ = machine.handle(.subscribed)
        #expect(machine.handle(.storeBehind) == .synchronize(reason: "L2 below the applied position"))
    }

    /// An L2 read is judged against where the node stood when it started: only a head of the
    /// node's epoch below that position shows Redis went back; a head missing, of another epoch
    /// (whose entries read as expired already) or at or above the position does not.
    @Test func aReadIsBehindOnlyWhenItsHeadIsBelowThePositionInTheNodesEpoch() {
        let fence = Self.synchronized(at: 10).readFence
        #expect(fence.isStoreBehind(BackplaneHead(epoch: "e1", sequence: 9)))
        #expect(!fence.isStoreBehind(BackplaneHead(epoch: "e1", sequence: 10)))
        #expect(!fence.isStoreBehind(BackplaneHead(epoch: "e1", sequence: 11)))
        #expect(!fence.isStoreBehind(BackplaneHead(epoch: "e2", sequence: 1)))
        #expect(!fence.isStoreBehind(nil))
        #expect(!CoherenceState().readFence.isStoreBehind(BackplaneHead(epoch: "e1", sequence: 0)))
        // Between the jump to the lower head and the marker that expires the older copies,
        // every read counts as behind.
        var expiring = Self.synchronized(at: 10)
        expiring.jump(to: 4)
        expiring.isExpiringRollback = true
        #expect(expiring.readFence.isStoreBehind(BackplaneHead(epoch: "e1", sequence: 4)))
        #expect(expiring.readFence.isStoreBehind(nil))
    }

    // MARK: - Synchronization

    @Test func theFirstHeadIsAdoptedAndANewEpochMeansRedisLostItsData() {
        let head = BackplaneHead(epoch: "e2", sequence: 40)
        #expect(CoherenceStateMachine.plan(state: CoherenceState(), head: head) == .adoptFirstEpoch)
        #expect(CoherenceStateMachine.plan(state: Self.synchronized(at: 10), head: head) == .epochChanged(from: "e1"))
        #expect(CoherenceStateMachine.plan(state: Self.synchronized(at: 10), head: BackplaneHead(epoch: "e1", sequence: 40)) == .verifyPosition)
    }

    @Test func aHeadBelowThePositionIsARollbackAndPositionZeroNeedsNoLogEntry() {
        let state = Self.synchronized(at: 10)
        #expect(CoherenceStateMachine.checkPositionAgainstHead(state: state, head: BackplaneHead(epoch: "e1", sequence: 9))
            == .rolledBack("the log's head went back from 10 to 9"))
        #expect(CoherenceStateMachine.checkPositionAgainstHead(state: state, head: BackplaneHead(epoch: "e1", sequence: 10)) == nil)
        var fresh = CoherenceState()
        fresh.epoch = "e1"
        #expect(CoherenceStateMachine.checkPositionAgainstHead(state: fresh, head: BackplaneHead(epoch: "e1", sequence: 5)) == .matches)
    }

    @Test func theLogEntryAtThePositionMustBeTheWriteApplied() {
        let state = Self.synchronized(at: 10, writeID: 7)
        #expect(CoherenceStateMachine.judgePosition(state: state, entry: Self.message(sequence: 10, writeID: 7)) == .matches)
        #expect(CoherenceStateMachine.judgePosition(state: state, entry: Self.message(sequence: 10, writeID: 8))
            == .rolledBack("the log entry at 10 is another write than the one applied"))
        // Trimmed, unreadable or at another number: the replay that follows decides.
        #expect(CoherenceStateMachine.judgePosition(state: state, entry: nil) == .matches)
        #expect(CoherenceStateMachine.judgePosition(state: state, entry: Self.message(sequence: 11, writeID: 8)) == .matches)
        var jumped = state
        jumped.jump(to: 10)
        #expect(CoherenceStateMachine.judgePosition(state: jumped, entry: Self.message(sequence: 10, writeID: 9)) == .learn(writeID: 9))
    }

    @Test func missedMessagesUpToTheHeadAreReplayed() {
        let state = Self.synchronized(at: 10)
        #expect(CoherenceStateMachine.replayRange(state: state, head: BackplaneHead(epoch: "e1", sequence: 14)) == 11...14)
        #expect(CoherenceStateMachine.replayRange(state: state, head: BackplaneHead(epoch: "e1", sequence: 10)) == nil)
    }

    // MARK: - Messages

    @Test func messagesAreAppliedInOrderAndDuplicatesDropped() {
        let state = Self.synchronized(at: 10, writeID: 7)
        #expect(CoherenceStateMachine.classify(Self.message(sequence: 11), state: state) == .apply)
        #expect(CoherenceStateMachine.classify(Self.message(sequence: 10, writeID: 7), state: state) == .duplicate)
        #expect(CoherenceStateMachine.classify(Self.message(sequence: 10, writeID: 99), state: state) == .reusedSequence)
        // Below what the node remembers write ids for: a plain duplicate.
        #expect(CoherenceStateMachine.classify(Self.message(sequence: 3, writeID: 99), state: state) == .duplicate)
    }

    @Test func beforeTheFirstSynchronizationMessagesWaitForTheReplay() {
        var state = Self.synchronized(at: 10)
        state.isSynchronized = false
        #expect(CoherenceStateMachine.classify(Self.message(sequence: 11), state: state) == .waitForSynchronization)
        #expect(CoherenceStateMachine.classify(Self.message(sequence: 1), state: CoherenceState()) == .waitForSynchronization)
    }

    @Test func aGapOrAnotherEpochIsCheckedAgainstTheHeadBeforeAnythingIsDone() {
        let state = Self.synchronized(at: 10)
        #expect(CoherenceStateMachine.classify(Self.message(sequence: 13), state: state) == .checkHead)
        #expect(CoherenceStateMachine.classify(Self.message(epoch: "e2", sequence: 1), state: state) == .checkHead)
    }

    @Test func theHeadTellsARealGapFromAForgedOneAndARealEpochChangeFromAForgedOne() {
        let state = Self.synchronized(at: 10)
        let head = BackplaneHead(epoch: "e1", sequence: 14)
        #expect(CoherenceStateMachine.judgeAgainstHead(Self.message(sequence: 13), head: head, state: state) == .replayGap(11...12))
        // A number the head never reached: forged or corrupt, ignored; the epoch is the node's.
        #expect(CoherenceStateMachine.judgeAgainstHead(Self.message(sequence: 900), head: head, state: state)
            == .ignore(reason: "message epoch e1 seq 900 does not match head e1 seq 14", resynchronize: false))
        // An epoch the head does not have: ignored.
        #expect(CoherenceStateMachine.judgeAgainstHead(Self.message(epoch: "forged", sequence: 1), head: head, state: state)
            == .ignore(reason: "message epoch forged seq 1 does not match head e1 seq 14", resynchronize: false))
        // The head moved to a new epoch the message does not carry: ignored, and resynchronized.
        let newHead = BackplaneHead(epoch: "e2", sequence: 3)
        #expect(CoherenceStateMachine.judgeAgainstHead(Self.message(epoch: "e1", sequence: 13), head: newHead, state: state)
            == .ignore(reason: "message epoch e1 seq 13 does not match head e2 seq 3", resynchronize: true))
        // The message carries the head's new epoch: Redis lost its data.
        #expect(CoherenceStateMachine.judgeAgainstHead(Self.message(epoch: "e2", sequence: 2), head: newHead, state: state) == .epochChanged)
    }

    @Test func afterAReplayedGapTheMessageIsAppliedOrLeftToTheNextSynchronization() {
        var state = Self.synchronized(at: 12)
        #expect(CoherenceStateMachine.classifyInOrder(Self.message(sequence: 13), state: state) == .apply)
        state = Self.synchronized(at: 11)
        #expect(CoherenceStateMachine.classifyInOrder(Self.message(sequence: 13), state: state) == .outOfOrder)
    }
}
