import ConcordChaos
import Foundation
import Testing

@Suite struct HistoryRecorderTests {
    @Test func concurrentRecordingKeepsEveryOperationWithUniqueIDs() async {
        let recorder = HistoryRecorder(nodes: ["n1", "n2"])
        await withTaskGroup(of: Void.self) { group in
            for worker in 0..<8 {
                group.addTask {
                    for step in 0..<2_000 {
                        let pending = recorder.begin(.read, node: "n\(worker % 2 + 1)", key: "k\(step % 10)")
                        recorder.complete(pending, .ok(version: Int64(step)), source: .memory)
                    }
                }
            }
        }
        let history = recorder.snapshot()
        #expect(history.operations.count == 16_000)
        #expect(Set(history.operations.map(\.id)).count == 16_000)
        #expect(history.operations.allSatisfy { $0.start <= $0.end })
        #expect(zip(history.operations, history.operations.dropFirst()).allSatisfy { $0.start <= $1.start })
    }

    @Test func measureRecordsErrorsAsFailures() async {
        struct Boom: Error {}
        let recorder = HistoryRecorder()
        let ok = await recorder.measure(.read, node: "n1", key: "k") { .init(version: 3, stale: true, source: .origin) }
        let failed = await recorder.measure(.write, node: "n1", key: "k") { throw Boom() }
        #expect(ok.outcome == .ok(version: 3))
        #expect(ok.stale)
        #expect(ok.source == .origin)
        #expect(!failed.outcome.isOK)
        #expect(recorder.operationCount == 2)
    }

    @Test func faultsAreStampedAndHealed() {
        let recorder = HistoryRecorder(nodes: ["n1"])
        let id = recorder.faultStarted(kind: "redis-down", targets: [Fault.redisTarget])
        #expect(recorder.snapshot().faults[0].heal == nil)
        recorder.faultHealed(id)
        let fault = recorder.snapshot().faults[0]
        #expect(fault.heal != nil)
        #expect(fault.heal! >= fault.start)
        #expect(fault.affectsAllNodes)
    }

    @Test func historyRoundTripsThroughJSON() throws {
        var h = HistoryBuilder()
        h.write("n1", "k", v: 1, 0, 10.123456)
        h.read("n2", "k", v: nil, 20, 25, stale: true, purpose: .probe)
        h.fail(.delete, "n1", "k", 30, 40)
        h.fault("partition", targets: ["n2"], 5, heal: nil)
        let history = h.history(end: 100)
        let data = try JSONEncoder().encode(history)
        let decoded = try JSONDecoder().decode(History.self, from: data)
        #expect(decoded == history)
    }
}
