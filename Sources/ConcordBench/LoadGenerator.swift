import ConcordProcess
import Foundation

/// Runs the load generators the `node` and `resp` suites compare with (redis-benchmark, wrk)
/// and reads their figures.
enum LoadGenerator {
    /// Throughput and median latency of one run.
    struct Figures: Sendable {
        var requestsPerSecond: Double
        var p50Microseconds: Double
    }

    /// `redis-benchmark -t TEST ... --csv` against 127.0.0.1:`port`.
    static func redisBenchmark(port: Int, test: String, clients: Int, pipeline: Int, requests: Int, password: String? = nil) async throws -> Figures {
        guard let executable = ExecutableSearch.locate("redis-benchmark") else {
            throw BenchError("redis-benchmark is not installed (run scripts/setup.sh)")
        }
        var arguments = ["-h", "127.0.0.1", "-p", String(port), "-t", test, "-c", String(clients), "-P", String(pipeline), "-n", String(requests), "--csv"]
        if let password { arguments += ["-a", password] }
        let output = try await HelperProgram.run(executable, arguments, timeout: .seconds(120))
        // "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms",...
        for line in output.standardOutput.split(whereSeparator: \.isNewline) {
            let fields = line.split(separator: ",").map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }
            if fields.count >= 5, fields[0] == test.uppercased(), let rps = Double(fields[1]), let p50 = Double(fields[4]) {
                return Figures(requestsPerSecond: rps, p50Microseconds: p50 * 1000)
            }
        }
        throw BenchError("redis-benchmark printed no \(test.uppercased()) figure (exit \(output.status)): \(output.standardOutput.suffix(300)) \(output.standardError.suffix(300))")
    }

    /// `wrk -t1 -c CONNECTIONS -d SECONDS --latency URL`.
    static func wrk(url: String, connections: Int, seconds: Int) async throws -> Figures {
        guard let executable = ExecutableSearch.locate("wrk") else {
            throw BenchError("wrk is not installed (run scripts/setup.sh)")
        }
        let output = try await HelperProgram.run(
            executable, ["-t1", "-c\(connections)", "-d\(seconds)s", "--latency", url], timeout: .seconds(seconds + 30))
        var rps: Double?
        var p50: Double?
        for line in output.standardOutput.split(whereSeparator: \.isNewline) {
            let fields = line.split(whereSeparator: \.isWhitespace)
            if fields.first == "Requests/sec:", fields.count >= 2 { rps = Double(fields[1]) }
            if fields.first == "50%", fields.count >= 2 { p50 = microseconds(String(fields[1])) }
            if fields.first == "Non-2xx" { throw BenchError("wrk got error statuses from \(url): \(line)") }
        }
        guard let rps, let p50 else {
            throw BenchError("wrk printed no figures (exit \(output.status)): \(output.standardOutput.suffix(300)) \(output.standardError.suffix(300))")
        }
        return Figures(requestsPerSecond: rps, p50Microseconds: p50)
    }

    /// wrk's latency text (`44.00us`, `1.20ms`, `2.00s`) in microseconds.
    static func microseconds(_ text: String) -> Double? {
        for (suffix, scale) in [("us", 1.0), ("ms", 1000.0), ("s", 1_000_000.0)] where text.hasSuffix(suffix) {
            return Double(text.dropLast(suffix.count)).map { $0 * scale }
        }
        return nil
    }
}
