@testable @_spi(ConcordBackend) import Concord
import Testing

/// The gate that lets a backplane message be handled where it arrives: only while the coherence
/// loop has nothing queued and nothing in hand, so no input is ever overtaken. Driven by hand,
/// without a loop, a backplane or a clock.
@Suite("Coherence inbox")
struct CoherenceInboxTests {
    @Test func anIdleInboxRunsTheHandlerAndQueuesNothing() async {
        let inbox = CoherenceInbox()
        var inputs = inbox.inputs.makeAsyncIterator()
        var ran = 0
        #expect(inbox.handleIfIdle { ran += 1; return nil })
        #expect(inbox.handleIfIdle { ran += 1; return nil })
        #expect(ran == 2)
        // The only input the loop then finds is one sent after them.
        inbox.send(.heartbeat)
        guard case .heartbeat? = await inputs.next() else {
            Issue.record("the handled inputs reached the loop's queue")
            return
        }
    }

    @Test func aQueuedInputClosesTheGateUntilTheLoopFinishesIt() async {
        let inbox = CoherenceInbox()
        var inputs = inbox.inputs.makeAsyncIterator()
        inbox.send(.heartbeat)
        var ran = false
        #expect(!inbox.handleIfIdle { ran = true; return nil })
        #expect(!ran)
        // Taken but not finished: the loop has it in hand.
        _ = await inputs.next()
        #expect(!inbox.handleIfIdle { ran = true; return nil })
        #expect(!ran)
        inbox.finished()
        #expect(inbox.handleIfIdle { ran = true; return nil })
        #expect(ran)
    }

    @Test func aHandlerThatNeedsTheLoopQueuesItsInputAndClosesTheGate() async {
        let inbox = CoherenceInbox()
        var inputs = inbox.inputs.makeAsyncIterator()
        #expect(inbox.handleIfIdle { .retrySynchronize })
        // Queued before the gate opened again: a later message cannot be handled first.
        var ran = false
        #expect(!inbox.handleIfIdle { ran = true; return nil })
        #expect(!ran)
        guard case .retrySynchronize? = await inputs.next() else {
            Issue.record("the handler's input was not queued for the loop")
            return
        }
        inbox.finished()
        #expect(inbox.handleIfIdle { ran = true; return nil })
        #expect(ran)
    }

    @Test func everyQueuedInputMustBeFinishedBeforeTheGateOpens() async {
        let inbox = CoherenceInbox()
        inbox.send(.heartbeat)
        inbox.send(.queueOverflowed)
        var inputs = inbox.inputs.makeAsyncIterator()
        _ = await inputs.next()
        inbox.finished()
        #expect(!inbox.handleIfIdle { nil })
        _ = await inputs.next()
        inbox.finished()
        #expect(inbox.handleIfIdle { nil })
    }
}
