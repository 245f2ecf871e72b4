import Synchronization
import Testing

@testable import ConcordNode

/// The hand-off of awaited RESP commands to the server's task group: order, batching, finishing
/// and cancellation.
@Suite struct RESPJobQueueTests {
    /// A job that records `id` in `ran` when run.
    private func job(_ id: Int, _ ran: RanJobs) -> RESPJob {
        RESPJob { ran.ids.withLock { $0.append(id) } }
    }

    private func runAll(_ batch: [RESPJob]?) async {
        for job in batch ?? [] { await job.run() }
    }

    @Test func jobsQueuedBeforeTheConsumerLooksComeTogetherInOrder() async {
        let queue = RESPJobQueue()
        let ran = RanJobs()
        for id in 0..<5 { #expect(queue.submit(job(id, ran))) }
        let batch = await queue.next()
        #expect(batch?.count == 5)
        await runAll(batch)
        #expect(ran.ids.withLock { $0 } == [0, 1, 2, 3, 4])
    }

    @Test func aWaitingConsumerGetsTheNextJob() async {
        let queue = RESPJobQueue()
        let ran = RanJobs()
        await withTaskGroup(of: [RESPJob]?.self) { group in
            group.addTask { await queue.next() }
            #expect(queue.submit(job(7, ran)))
            let batch = await group.next() ?? nil
            await runAll(batch)
        }
        #expect(ran.ids.withLock { $0 } == [7])
    }

    @Test func finishingRefusesNewJobsAndStillDeliversQueuedOnes() async {
        let queue = RESPJobQueue()
        let ran = RanJobs()
        #expect(queue.submit(job(1, ran)))
        #expect(queue.submit(job(2, ran)))
        queue.finish()
        #expect(!queue.submit(job(3, ran)))
        await runAll(await queue.next())
        #expect(await queue.next() == nil)
        #expect(ran.ids.withLock { $0 } == [1, 2])
    }

    @Test func aFinishWakesAWaitingConsumerWithNil() async {
        let queue = RESPJobQueue()
        await withTaskGroup(of: Bool.self) { group in
            group.addTask { await queue.next() == nil }
            queue.finish()
            #expect(await group.next() == true)
        }
    }

    @Test func cancellingTheConsumerEndsItAndRefusesLaterJobs() async {
        let queue = RESPJobQueue()
        let ran = RanJobs()
        await withTaskGroup(of: Bool.self) { group in
            group.addTask { await queue.next() == nil }
            group.cancelAll()
            #expect(await group.next() == true)
        }
        #expect(!queue.submit(job(1, ran)))
        #expect(ran.ids.withLock { $0 }.isEmpty)
    }
}

/// The ids of the jobs run, in the order they ran.
private final class RanJobs: Sendable {
    let ids = Mutex<[Int]>([])
}
