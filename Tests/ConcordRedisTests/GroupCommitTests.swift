import ConcordTesting
import Synchronization
import Testing

@testable import ConcordRedis

/// A batch sender for tests: records every batch, and holds each send until `open()`, so a
/// test can queue writes behind one in flight without depending on timing.
final class GatedSender: Sendable {
    private let state = Mutex<(batches: [[Int]], isOpen: Bool, waiting: [CheckedContinuation<Void, Never>])>(([], false, []))

    var batches: [[Int]] { state.withLock { $0.batches } }

    func send(_ batch: [Int]) async {
        await withCheckedContinuation { continuation in
            let proceeds = state.withLock { state in
                state.batches.append(batch)
                if !state.isOpen { state.waiting.append(continuation) }
                return state.isOpen
            }
            if proceeds { continuation.resume() }
        }
    }

    func open() {
        let waiting = state.withLock { state in
            state.isOpen = true
            defer { state.waiting = [] }
            return state.waiting
        }
        for continuation in waiting { continuation.resume() }
    }
}

@Suite("Group commit of writes behind one in flight")
struct GroupCommitTests {
    /// Submits write 0 (held in flight by `sender`), then each of `queued` in order, each once
    /// the previous one is queued; opens the sender and returns every caller's outcome.
    static func run(
        _ commit: GroupCommit<Int, Int>, sender: GatedSender, queued: [(write: Int, bytes: Int)]
    ) async throws -> [Int: Int] {
        try await withThrowingTaskGroup(of: (Int, Int).self) { group in
            group.addTask { (0, try await commit.submit(0, bytes: 1)) }
            #expect(await eventually { sender.batches.count == 1 })
            for (index, item) in queued.enumerated() {
                group.addTask { (item.write, try await commit.submit(item.write, bytes: item.bytes)) }
                #expect(await eventually { commit.queuedCount == index + 1 })
            }
            sender.open()
            var outcomes: [Int: Int] = [:]
            for try await (write, outcome) in group { outcomes[write] = outcome }
            return outcomes
        }
    }

    @Test func writesQueuedBehindOneInFlightGoOutInOrderInBatchesOfAtMostMaxCount() async throws {
        let sender = GatedSender()
        let commit = GroupCommit<Int, Int>(maxCount: 3, maxBytes: 1_000) { batch in
            await sender.send(batch)
            return batch.map { .success($0 * 10) }
        }
        let outcomes = try await Self.run(commit, sender: sender, queued: (1...7).map { ($0, 1) })
        #expect(sender.batches == [[0], [1, 2, 3], [4, 5, 6], [7]])
        #expect(outcomes == Dictionary(uniqueKeysWithValues: (0...7).map { ($0, $0 * 10) }))
        #expect(commit.queuedCount == 0)
    }

    @Test func aBatchStopsAtMaxBytesAndAWriteLargerThanThatGoesAlone() async throws {
        let sender = GatedSender()
        let commit = GroupCommit<Int, Int>(maxCount: 10, maxBytes: 10) { batch in
            await sender.send(batch)
            return batch.map { .success($0) }
        }
        _ = try await Self.run(commit, sender: sender, queued: [(1, 4), (2, 4), (3, 4), (4, 20), (5, 1)])
        #expect(sender.batches == [[0], [1, 2], [3], [4], [5]])
    }

    @Test func eachCallerGetsItsOwnResultIncludingItsOwnError() async throws {
        struct Refused: Error, Equatable { let write: Int }
        let sender = GatedSender()
        let commit = GroupCommit<Int, Int>(maxCount: 8, maxBytes: 1_000) { batch in
            await sender.send(batch)
            return batch.map { $0 % 2 == 0 ? .success($0) : .failure(Refused(write: $0)) }
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                let outcome = try await commit.submit(0, bytes: 1)
                #expect(outcome == 0)
            }
            #expect(await eventually { sender.batches.count == 1 })
            for write in 1...4 {
                group.addTask {
                    if write % 2 == 0 {
                        let outcome = try await commit.submit(write, bytes: 1)
                        #expect(outcome == write)
                    } else {
                        await #expect(throws: Refused(write: write)) { try await commit.submit(write, bytes: 1) }
                    }
                }
                #expect(await eventually { commit.queuedCount == write })
            }
            sender.open()
            try await group.waitForAll()
        }
        #expect(sender.batches == [[0], [1, 2, 3, 4]])
    }

    @Test func aSenderThatAnswersTheWrongNumberOfResultsFailsEveryCallerWithAProtocolError() async throws {
        let sender = GatedSender()
        let commit = GroupCommit<Int, Int>(maxCount: 8, maxBytes: 1_000) { batch in
            await sender.send(batch)
            // Right for the first batch (one write), one short for the second (two).
            return [.success(0)]
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { _ = try await commit.submit(0, bytes: 1) }
            #expect(await eventually { sender.batches.count == 1 })
            for write in 1...2 {
                group.addTask {
                    let error = await redisError { _ = try await commit.submit(write, bytes: 1) }
                    #expect(error?.code == .protocolError)
                }
                #expect(await eventually { commit.queuedCount == write })
            }
            sender.open()
            try await group.waitForAll()
        }
    }

    @Test func aCallerCancelledWhileQueuedLeavesTheQueueAndItsWriteIsNeverSent() async throws {
        let sender = GatedSender()
        let commit = GroupCommit<Int, Int>(maxCount: 8, maxBytes: 1_000) { batch in
            await sender.send(batch)
            return batch.map { .success($0) }
        }
        let first = Task { try await commit.submit(0, bytes: 1) }
        #expect(await eventually { sender.batches.count == 1 })
        let cancelled = Task { try await commit.submit(1, bytes: 1) }
        #expect(await eventually { commit.queuedCount == 1 })
        let kept = Task { try await commit.submit(2, bytes: 1) }
        #expect(await eventually { commit.queuedCount == 2 })
        cancelled.cancel()
        await #expect(throws: CancellationError.self) { try await cancelled.value }
        #expect(commit.queuedCount == 1)
        sender.open()
        #expect(try await first.value == 0)
        #expect(try await kept.value == 2)
        #expect(sender.batches == [[0], [2]])
    }

    @Test func aLoneWriteIsSentAtOnceAndTheStepIsIdleAfterwards() async throws {
        let sender = GatedSender()
        sender.open()
        let commit = GroupCommit<Int, Int>(maxCount: 8, maxBytes: 1_000) { batch in
            await sender.send(batch)
            return batch.map { .success($0 + 1) }
        }
        #expect(try await commit.submit(1, bytes: 1) == 2)
        #expect(try await commit.submit(2, bytes: 1) == 3)
        #expect(sender.batches == [[1], [2]])
    }
}
