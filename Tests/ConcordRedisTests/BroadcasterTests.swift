import Synchronization
import Foundation
import Testing

@testable import ConcordRedis

@Suite("Broadcaster")
struct BroadcasterTests {
    @Test func everyConsumerGetsEveryValueAndLateOnesGetTheLatest() async {
        let broadcaster = Broadcaster<Int>(replayLatest: true, bufferSize: 16)
        let first = broadcaster.makeStream()
        broadcaster.publish(1)
        let second = broadcaster.makeStream()  // joins late: starts at the latest value
        broadcaster.publish(2)
        broadcaster.finish()
        #expect(await Array(first) == [1, 2])
        #expect(await Array(second) == [1, 2])
        #expect(await Array(broadcaster.makeStream()) == [2])  // after finish: the latest, then done
    }

    /// Cancelling a consumer while values are published must not deadlock: the cancelled task
    /// holds its status lock while the stream's termination handler runs, and a publisher that
    /// yields to that task needs the same lock. (A node once hung on exit this way.) Bounded by
    /// rounds and by the time limit; a deadlock shows as the limit being hit.
    @Test(.timeLimit(.minutes(1)))
    func cancellingConsumersWhilePublishingDoesNotDeadlock() async {
        let broadcaster = Broadcaster<Int>(replayLatest: true, bufferSize: 4)
        let stop = StopFlag()
        let publisher = Thread {
            var value = 0
            while value < 50_000_000, !stop.isSet {
                broadcaster.publish(value)
                value += 1
            }
        }
        publisher.start()
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(20)
        var rounds = 0
        while rounds < 3_000, clock.now < deadline {
            let stream = broadcaster.makeStream()
            let consumer = Task {
                var seen = 0
                for await _ in stream { seen += 1 }
                return seen
            }
            await Task.yield()
            consumer.cancel()
            _ = await consumer.value
            rounds += 1
        }
        stop.set()
        #expect(rounds > 0)
    }

    @Test func slowStateConsumerKeepsTheNewest() async {
        let broadcaster = Broadcaster<Int>(replayLatest: true, bufferSize: 2)
        let stream = broadcaster.makeStream()
        for value in 1...5 { broadcaster.publish(value) }
        broadcaster.finish()
        #expect(await Array(stream) == [4, 5])
    }

    @Test func slowMessageConsumerKeepsTheOldestAndCountsDrops() async {
        let broadcaster = Broadcaster<Int>(replayLatest: false, bufferSize: 2)
        let stream = broadcaster.makeStream()
        let dropped = (1...5).map { broadcaster.publish($0) }.reduce(0, +)
        broadcaster.finish()
        #expect(dropped == 3)
        #expect(await Array(stream) == [1, 2])
    }

    @Test func cancelledConsumerIsForgotten() async {
        let broadcaster = Broadcaster<Int>(replayLatest: false, bufferSize: 4)
        let stream = broadcaster.makeStream()
        await withTaskGroup(of: Void.self) { group in
            group.addTask { for await _ in stream {} }
            group.cancelAll()
        }
        #expect(broadcaster.publish(1) == 0)
    }
}

extension Array {
    init(_ stream: AsyncStream<Element>) async {
        self = []
        for await element in stream { append(element) }
    }
}

/// Tells the publishing thread of a test to stop.
private final class StopFlag: Sendable {
    private let flag = Atomic<Bool>(false)
    var isSet: Bool { flag.load(ordering: .relaxed) }
    func set() { flag.store(true, ordering: .relaxed) }
}
