@testable import ConcordChaos
import ConcordNode
import ConcordTesting
import Foundation
import Logging
import Testing

@Suite struct WorkloadTests {
    let logger = Logger(label: "test.workload")

    /// A workload over fake nodes and a throwaway origin.
    private func withWorkload(nodes: Int = 1, keys: Int = 3, _ body: (Workload, [FakeNodeServer], OriginStore) async throws -> Void) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("concord-workload-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        var servers: [FakeNodeServer] = []
        for _ in 0..<nodes { servers.append(try await FakeNodeServer.start()) }
        let origin = try OriginStore.create(path: directory.appendingPathComponent("origin.sqlite").path, keys: Workload.keys(count: keys))
        // Requests get a budget a loaded CI machine cannot exhaust: these tests are not about timeouts.
        let generousBudget = NodeClient.Configuration(requestTimeout: .seconds(30))
        var configuration = Workload.Configuration()
        configuration.keyCount = keys
        let targets = servers.enumerated().map { Workload.Target(id: "n\($0.offset + 1)", client: NodeClient(port: $0.element.port, configuration: generousBudget, logger: logger)) }
        let workload = Workload(configuration: configuration, targets: targets, origin: origin, recorder: HistoryRecorder(nodes: targets.map(\.id)), seed: 1)
        do {
            try await body(workload, servers, origin)
        } catch {
            for target in targets { target.client.shutdown() }
            for server in servers { await server.stop() }
            throw error
        }
        for target in targets { target.client.shutdown() }
        for server in servers { await server.stop() }
    }

    @Test func valuesEncodeTheirVersion() {
        #expect(OriginStore.value(version: 12) == Array("v12".utf8))
        #expect(OriginStore.version(of: Array("v12".utf8)) == 12)
        #expect(OriginStore.version(of: Array("v0".utf8)) == 0)
        #expect(OriginStore.version(of: Array("v".utf8)) == nil)
        #expect(OriginStore.version(of: Array("12".utf8)) == nil)
        #expect(OriginStore.version(of: Array("v1x".utf8)) == nil)
        #expect(OriginStore.version(of: Array("v99999999999999999999".utf8)) == nil)
        #expect(Workload.keys(count: 3) == ["k0", "k1", "k2"])
        #expect(Workload.keys(count: 30).first == "k00")
    }

    @Test func aWriteRaisesTheOriginThenPutsTheSameValue() async throws {
        try await withWorkload { workload, servers, origin in
            let origin1 = try await origin.version(of: "k1")
            #expect(origin1 == 1)
            let write = await workload.mutate(target: 0, key: "k1", kind: .write)
            #expect(write.kind == .write)
            #expect(write.node == "n1")
            #expect(write.outcome == .ok(version: 2))
            #expect(write.start <= write.end)
            let origin2 = try await origin.version(of: "k1")
            #expect(origin2 == 2)
            #expect(servers[0].withState { $0.values["k1"]?.body } == Array("v2".utf8))
            #expect(workload.latestAcked("k1") == 2)
            #expect(workload.latestAcked("k2") == 0)

            let read = await workload.read(target: 0, key: "k1")
            #expect(read.kind == .read)
            #expect(read.outcome == .ok(version: 2))
            #expect(read.stale == false)
            #expect(read.source == .memory)
            #expect(read.purpose == .workload)
        }
    }

    @Test func aDeleteRaisesTheOriginAndRemoves() async throws {
        try await withWorkload { workload, servers, origin in
            _ = await workload.mutate(target: 0, key: "k0", kind: .write)
            let delete = await workload.mutate(target: 0, key: "k0", kind: .delete)
            #expect(delete.kind == .delete)
            #expect(delete.outcome == .ok(version: 3))
            let origin3 = try await origin.version(of: "k0")
            #expect(origin3 == 3)
            #expect(servers[0].withState { $0.values["k0"] } == nil)
            // The fake has no origin behind it: the read finds nothing, recorded as such.
            let read = await workload.read(target: 0, key: "k0", purpose: .probe)
            #expect(read.outcome == .ok(version: nil))
            #expect(read.purpose == .probe)
        }
    }

    @Test func staleFlagsAndCorruptBodiesAreRecorded() async throws {
        try await withWorkload { workload, servers, _ in
            servers[0].withState {
                $0.values["stale-k"] = (Array("v7".utf8), 1)
                $0.values["bad"] = (Array("hello".utf8), 1)
            }
            let stale = await workload.read(target: 0, key: "stale-k")
            #expect(stale.outcome == .ok(version: 7))
            #expect(stale.stale)
            let corrupt = await workload.read(target: 0, key: "bad")
            #expect(!corrupt.outcome.isOK)
            #expect(workload.corruptReads.count == 1)
            #expect(workload.corruptReads[0].contains("hello"))
        }
    }

    @Test func aWriteToADeadNodeIsAFailureNotAnAck() async throws {
        try await withWorkload { workload, servers, origin in
            await servers[0].stop()
            let write = await workload.mutate(target: 0, key: "k2", kind: .write)
            #expect(!write.outcome.isOK)
            // The origin moved on although nothing acknowledged it; the checker only owes acked versions.
            let origin4 = try await origin.version(of: "k2")
            #expect(origin4 == 2)
            #expect(workload.latestAcked("k2") == 0)
        }
    }

    @Test func runningRecordsTrafficOnEveryNodeAndStops() async throws {
        try await withWorkload(nodes: 2, keys: 4) { workload, _, _ in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await workload.run() }
                // Stop once every node has served a read and some mutation was acknowledged, rather
                // than after a fixed time that a loaded machine may not fill with traffic.
                let sawTraffic = await eventually(timeout: .seconds(60)) {
                    let operations = (try? workload.recorder.snapshot())?.operations ?? []
                    let readers = Set(operations.filter { $0.kind == .read }.map(\.node))
                    return readers == ["n1", "n2"] && operations.contains { $0.kind.isMutation && $0.outcome.isOK }
                }
                workload.stop()
                #expect(sawTraffic)
                try await group.waitForAll()
            }
            let history = try workload.recorder.snapshot()
            #expect(Set(history.operations.filter { $0.kind == .read }.map(\.node)) == ["n1", "n2"])
            #expect(history.operations.contains { $0.kind.isMutation && $0.outcome.isOK })
            // Each key has one writer, so acked versions of a key grow with their acks.
            for key in workload.keys {
                let acked = history.operations.filter { $0.key == key && $0.kind.isMutation && $0.outcome.isOK }.sorted { $0.end < $1.end }
                let versions = acked.compactMap(\.outcome.version)
                #expect(versions == versions.sorted())
            }
            let final = await workload.finalReads()
            #expect(final.isEmpty)
            #expect(try workload.recorder.snapshot().operations.filter { $0.purpose == .final }.count == 8)
        }
    }

    @Test func statsBodiesGiveRecoveryCounters() throws {
        let body = Array(#"{"node":"n1","autoRecovery":{"queued":4,"flushed":3,"overflowed":1,"depth":0}}"#.utf8)
        #expect(try ChaosHarness.recoveryCounters(from: NodeResponse(status: 200, headers: [], body: body)) == AutoRecoveryCounters(queued: 4, flushed: 3, overflowed: 1))
        #expect(throws: ChaosError.self) { try ChaosHarness.recoveryCounters(from: NodeResponse(status: 200, headers: [], body: Array("{}".utf8))) }
        #expect(throws: ChaosError.self) { try ChaosHarness.recoveryCounters(from: NodeResponse(status: 503, headers: [], body: body)) }
    }
}
