import ConcordChaos
import Foundation
import Testing

@Suite struct HistoryRecorderTests {
    @Test func concurrentRecordingKeepsEveryOperationWithUniqueIDs() async throws {
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
        let history = try recorder.snapshot()
        #expect(history.operations.count == 16_000)
        #expect(Set(history.operations.map(\.id)).count == 16_000)
        #expect(history.operations.allSatisfy { $0.start <= $0.end })
        #expect(zip(history.operations, history.operations.dropFirst()).allSatisfy { $0.start <= $1.start })
    }

    @Test func aSpooledRecorderStreamsToDiskAndReadsBackTheSameHistory() async throws {
        let spool = FileManager.default.temporaryDirectory.appendingPathComponent("concord-spool-\(UUID().uuidString).ndjson")
        defer { try? FileManager.default.removeItem(at: spool) }
        let recorder = try HistoryRecorder(nodes: ["n1", "n2"], spool: spool)
        await withTaskGroup(of: Void.self) { group in
            for worker in 0..<4 {
                group.addTask {
                    for step in 0..<5_000 {
                        let pending = recorder.begin(step % 3 == 0 ? .write : .read, node: "n\(worker % 2 + 1)", key: "k\(step % 10)")
                        recorder.complete(pending, .ok(version: Int64(step)), stale: step % 7 == 0, background: step % 3 == 0 && step % 2 == 0)
                    }
                }
            }
        }
        // Most of it is on disk before any snapshot: batches are written as they fill.
        let written = try FileManager.default.attributesOfItem(atPath: spool.path)[.size] as? Int ?? 0
        #expect(written > 1_000_000)
        let history = try recorder.snapshot()
        #expect(history.operations.count == 20_000)
        #expect(recorder.operationCount == 20_000)
        #expect(Set(history.operations.map(\.id)).count == 20_000)
        #expect(history.operations.filter(\.background).count == 4 * 834)
        #expect(zip(history.operations, history.operations.dropFirst()).allSatisfy { $0.start <= $1.start })
        // A damaged line is a clear error, not a crash or a silently shorter history.
        try Data("{\"not\": an operation}\n".utf8).write(to: spool)
        #expect(throws: ChaosError.self) { try HistoryRecorder.readSpool(spool) }
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

    @Test func faultsAreStampedAndHealed() throws {
        let recorder = HistoryRecorder(nodes: ["n1"])
        let id = recorder.faultStarted(kind: "redis-down", targets: [Fault.redisTarget])
        #expect(try recorder.snapshot().faults[0].heal == nil)
        recorder.faultHealed(id)
        let fault = try recorder.snapshot().faults[0]
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
