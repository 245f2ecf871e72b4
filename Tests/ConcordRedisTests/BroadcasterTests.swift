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
