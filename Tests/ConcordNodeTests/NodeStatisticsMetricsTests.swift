import Concord
import ConcordNode
import ConcordProcess
import ConcordTesting
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `/v1/stats` and `/metrics` come from one reporting path (`CacheInstrumentation`), so after
/// any workload every counter of the one equals its series in the other. Shown on real
/// `concord node` processes, a real Redis and a SQLite origin.
@Suite("Node statistics and metrics agree", .timeLimit(.minutes(3)))
struct NodeStatisticsMetricsTests {
    /// Each `/v1/stats` figure and the Prometheus series that must carry the same number.
    static let series: [(stat: String, metric: String, labels: [String: String])] = [
        ("memory.entries", "concord_memory_entries", [:]),
        ("memory.hits", "concord_hits_total", ["level": "memory"]),
        ("memory.misses", "concord_misses_total", ["level": "memory"]),
        ("memory.evictions", "concord_evictions_total", [:]),
        ("distributed.hits", "concord_hits_total", ["level": "distributed"]),
        ("distributed.misses", "concord_misses_total", ["level": "distributed"]),
        ("distributed.errors", "concord_distributed_errors_total", [:]),
        ("distributed.corruptEntries", "concord_distributed_corrupt_entries", [:]),
        ("distributed.futureVersions", "concord_distributed_future_versions_total", [:]),
        ("distributed.outOfMemoryErrors", "concord_distributed_out_of_memory_total", [:]),
        ("distributed.rebasedWrites", "concord_distributed_rebased_writes_total", [:]),
        ("distributed.rolledBackReads", "concord_distributed_rolled_back_reads_total", [:]),
        ("factory.calls", "concord_factory_calls_total", [:]),
        ("factory.errors", "concord_factory_errors_total", [:]),
        ("factory.timeouts", "concord_factory_timeouts_total", [:]),
        ("staleServed", "concord_stale_served_total", [:]),
        ("backplane.connected", "concord_backplane_connected", [:]),
        ("backplane.lastSeq", "concord_backplane_last_sequence", [:]),
        ("backplane.published", "concord_backplane_published_total", [:]),
        ("backplane.received", "concord_backplane_received_total", [:]),
        ("backplane.gapsDetected", "concord_backplane_gaps_total", [:]),
        ("backplane.replays", "concord_backplane_replays_total", [:]),
        ("backplane.fullExpiries", "concord_backplane_full_expiries_total", [:]),
        ("backplane.ignoredMessages", "concord_backplane_ignored_total", [:]),
        ("backplane.unauthenticatedMessages", "concord_backplane_unauthenticated_total", [:]),
        ("backplane.futureVersions", "concord_backplane_future_versions_total", [:]),
        ("backplane.queueOverflows", "concord_backplane_queue_overflows_total", [:]),
        ("backplane.rollbacksDetected", "concord_backplane_rollbacks_total", [:]),
        ("backplane.duplicateNodeID", "concord_backplane_duplicate_node_id", [:]),
        ("autoRecovery.queued", "concord_pending_writes_queued_total", [:]),
        ("autoRecovery.flushed", "concord_pending_writes_flushed_total", [:]),
        ("autoRecovery.overflowed", "concord_pending_writes_overflow_total", [:]),
        ("autoRecovery.refused", "concord_pending_writes_refused_total", [:]),
        ("autoRecovery.depth", "concord_pending_writes", [:]),
        ("autoRecovery.bytes", "concord_pending_writes_bytes", [:]),
    ]

    @Test("after L1/L2 hits and misses, tryGet, fail-safe, a factory error and a flushed queued write, every stats counter equals its metric")
    func statisticsEqualMetrics() async throws {
        let executable = try NodeProcessTests.concordExecutable()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("concord-stats-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let originPath = directory.appendingPathComponent("origin.db").path
        let origin = try SQLiteOrigin(path: originPath)
        try await origin.store("a", value: Array("one".utf8), version: 1)

        try await withRedisServer { server in
            let output = OutputLog()
            // n1 loads misses from the origin (getOrSet); n2 has no origin, so its GETs are tryGet.
            // No soft timeout: on a loaded machine the failing origin could outlast the default
            // 100 ms, and the stale value would then be served for a timeout, not an error.
            let withOrigin = ["--origin", "sqlite:\(originPath)", "--factory-soft-timeout", "off"]
            var nodes: [NodeProcess] = []
            do {
                for (id, extra) in [("stats-1", withOrigin), ("stats-2", [])] {
                    nodes.append(try NodeProcess.launch(
                        name: id,
                        executable: executable,
                        arguments: [
                            "node", "--id", id, "--port", "0", "--redis", server.url, "--fail-safe",
                            "--reconnect-backoff-base", "50ms", "--reconnect-backoff-cap", "500ms",
                            "--shutdown-timeout", "1s", "--parent-pid", String(getpid()),
                        ] + extra,
                        output: { output.append("[\(id)] \($0)") }
                    ))
                }
                var clients: [NodeClient] = []
                for node in nodes {
                    let port = try await node.waitUntilListening(timeout: .seconds(30))
                    let client = NodeClient(port: port, configuration: .init(requestTimeout: .seconds(30)))
                    #expect(await eventually(timeout: .seconds(20)) { (try? await client.ready()) == true }, "\(output.text)")
                    clients.append(client)
                }
                let (loader, reader) = (clients[0], clients[1])

                // L1 miss, L2 miss, factory; then an L1 hit; then an L2 hit and an L2 miss through tryGet.
                #expect(try await loader.get("a").source == "origin")
                #expect(try await loader.get("a").source == "memory")
                #expect(try await reader.get("a").source == "distributed")
                #expect(try await reader.get("absent").status == 404)

                // An expired key whose origin fails: a factory error, fail-safe serves the stale
                // value (an L2 fail-safe activation), and the next read is an L1 fail-safe hit.
                #expect(try await loader.invalidate(["a"]).status == 200)
                let dropped = try await HelperProgram.run("/usr/bin/sqlite3", [originPath, "DROP TABLE items"], timeout: .seconds(30))
                #expect(dropped.status == 0, "\(dropped.standardError)")
                let failedOver = try await loader.get("a")
                #expect(failedOver.status == 200)
                #expect(failedOver.isStale)
                #expect(try await loader.get("a").isStale)

                // A write while Redis is down is queued, and flushed once Redis is back.
                server.kill()
                #expect(try await loader.set("queued", value: Array("q".utf8)).status == 200)
                try await server.restart()
                let flushed = await eventually(timeout: .seconds(30)) {
                    guard let stats = try? await Self.statistics(loader) else { return false }
                    return Self.number(stats, "autoRecovery.flushed") ?? 0 >= 1 && Self.number(stats, "autoRecovery.depth") == 0
                }
                #expect(flushed, "the queued write was not flushed:\n\(output.text)")

                // Every counter the workload moved is non-zero somewhere, so the comparison
                // below compares something.
                let loaderStats = try await Self.statistics(loader)
                for stat in ["memory.hits", "memory.misses", "distributed.misses", "distributed.errors", "factory.calls",
                             "factory.errors", "staleServed", "autoRecovery.queued", "autoRecovery.flushed"] {
                    #expect((Self.number(loaderStats, stat) ?? 0) > 0, "\(stat) stayed 0 on the loader")
                }
                let readerStats = try await Self.statistics(reader)
                #expect((Self.number(readerStats, "distributed.hits") ?? 0) > 0)
                #expect((Self.number(readerStats, "distributed.misses") ?? 0) > 0)

                for (client, node) in zip(clients, nodes) {
                    // Compared once the node is quiet (messages from the restart may still arrive).
                    var mismatches: [String] = []
                    let agreed = await eventually(timeout: .seconds(10)) {
                        guard let stats = try? await Self.statistics(client),
                              let metrics = try? await client.request(.GET, "/metrics").text
                        else { return false }
                        mismatches = Self.mismatches(stats: stats, metrics: Self.parse(metrics))
                        return mismatches.isEmpty
                    }
                    #expect(agreed, "\(node.name): \(mismatches.joined(separator: "; "))")
                }
                for node in nodes { await node.stop(grace: .seconds(10)) }
            } catch {
                for node in nodes { await node.stop(grace: .seconds(2)) }
                throw error
            }
        }
    }

    static func statistics(_ client: NodeClient) async throws -> [String: Any] {
        let response = try await client.stats()
        guard let object = try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any] else {
            throw TestError("/v1/stats is not a JSON object: \(response.text)")
        }
        return object
    }

    /// The number at a dotted path of the stats document (`true`/`false` as 1/0).
    static func number(_ stats: [String: Any], _ path: String) -> Double? {
        var current: Any? = stats
        for part in path.split(separator: ".") { current = (current as? [String: Any])?[String(part)] }
        if let flag = current as? Bool { return flag ? 1 : 0 }
        return (current as? NSNumber)?.doubleValue
    }

    /// One sample of the Prometheus text format: name, labels and value.
    struct Sample {
        var name: String
        var labels: [String: String]
        var value: Double
    }

    static func parse(_ text: String) -> [Sample] {
        text.split(separator: "\n").compactMap { line -> Sample? in
            guard !line.hasPrefix("#"), let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { return nil }
            let series = line[..<space]
            guard let brace = series.firstIndex(of: "{") else { return Sample(name: String(series), labels: [:], value: value) }
            var labels: [String: String] = [:]
            for pair in series[series.index(after: brace)...].dropLast().split(separator: ",") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                if parts.count == 2 { labels[String(parts[0])] = String(parts[1].dropFirst().dropLast()) }
            }
            return Sample(name: String(series[..<brace]), labels: labels, value: value)
        }
    }

    static func mismatches(stats: [String: Any], metrics: [Sample]) -> [String] {
        series.compactMap { entry in
            guard let expected = number(stats, entry.stat) else { return "\(entry.stat) missing from /v1/stats" }
            let matching = metrics.filter { sample in
                sample.name == entry.metric && entry.labels.allSatisfy { sample.labels[$0.key] == $0.value }
            }
            guard let sample = matching.first else { return "\(entry.metric)\(entry.labels) missing from /metrics" }
            return sample.value == expected ? nil : "\(entry.stat) = \(expected) but \(entry.metric) = \(sample.value)"
        }
    }
}
