import ConcordNode
import ConcordProcess
import ConcordTesting
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The operations files in deploy/ name metrics a real node exports: every `concord_*` name in
/// the alert rules and the Grafana dashboard is looked up in the /metrics of a `concord node`
/// process on a real Redis. (promtool checks the rules' syntax and behaviour in
/// scripts/check-deploy.sh.)
@Suite("Deploy rules")
struct DeployRulesTests {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The `concord_*` metric names in a file, histogram series suffixes removed.
    static func metricNames(in relativePath: String) throws -> Set<String> {
        let text = try String(contentsOf: packageRoot.appendingPathComponent(relativePath), encoding: .utf8)
        var names = Set<String>()
        var current = ""
        func flush() {
            if current.hasPrefix("concord_") {
                var name = current
                for suffix in ["_bucket", "_sum", "_count"] where name.hasSuffix(suffix) {
                    name = String(name.dropLast(suffix.count))
                }
                names.insert(name)
            }
            current = ""
        }
        for character in text {
            if character.isLetter || character.isNumber || character == "_" {
                current.append(character)
            } else {
                flush()
            }
        }
        flush()
        return names
    }

    /// Metric families in a Prometheus text exposition (from its `# TYPE` lines).
    static func families(in exposition: String) -> Set<String> {
        var names = Set<String>()
        for line in exposition.split(separator: "\n") where line.hasPrefix("# TYPE ") {
            let parts = line.split(separator: " ")
            if parts.count >= 3 { names.insert(String(parts[2])) }
        }
        return names
    }

    @Test("every metric in alerts.yaml and concord.json is in a real node's /metrics")
    func deployFilesNameExportedMetrics() async throws {
        let alertNames = try Self.metricNames(in: "deploy/prometheus/alerts.yaml")
        let dashboardNames = try Self.metricNames(in: "deploy/grafana/concord.json")
        // The parse found the rules' metrics at all (a broken parse must not pass vacuously).
        #expect(alertNames.isSuperset(of: ["concord_backplane_connected", "concord_node_ready", "concord_pending_writes_capacity"]))
        #expect(dashboardNames.contains("concord_propagation_lag_seconds"))

        let executable = try NodeProcessTests.concordExecutable()
        try await withRedisServer { server in
            let output = OutputLog()
            let node = try NodeProcess.launch(
                name: "deploy-rules",
                executable: executable,
                arguments: ["node", "--id", "deploy-rules", "--port", "0", "--redis", server.url, "--shutdown-timeout", "1s", "--parent-pid", String(getpid())],
                output: { output.append($0) }
            )
            do {
                let port = try await node.waitUntilListening(timeout: .seconds(30))
                let client = NodeClient(port: port, configuration: .init(requestTimeout: .seconds(30)))
                #expect(await eventually(timeout: .seconds(10)) { (try? await client.ready()) == true }, "never ready:\n\(output.text)")
                // One request of each kind, so the HTTP metrics exist too.
                _ = try await client.set("deploy", value: [1])
                _ = try await client.get("deploy")
                let metrics = try await client.request(.GET, "/metrics")
                #expect(metrics.status == 200)
                let exported = Self.families(in: metrics.text)
                let missing = alertNames.union(dashboardNames).subtracting(exported).sorted()
                #expect(missing.isEmpty, "named in deploy/ but not exported by the node: \(missing)\nexported: \(exported.sorted())")
            } catch {
                _ = await node.stop(grace: .seconds(10))
                throw error
            }
            _ = await node.stop(grace: .seconds(10))
        }
    }
}
