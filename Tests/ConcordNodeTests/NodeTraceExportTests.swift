import ConcordNode
import ConcordProcess
import ConcordTesting
import Foundation
import Testing

/// `concord node --otel-endpoint`: real node processes exporting over OTLP/HTTP to a receiver
/// the test runs. A process bootstraps its tracer once, so each case starts its own node.
@Suite("Node trace export")
struct NodeTraceExportTests {
    /// The node's environment: the test's own, with the exporter's batch delay cut from 5 s to
    /// 50 ms so an export follows each request closely (the waits below are bounds, not sleeps).
    static var environment: [String: String] {
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("OTEL_") && !$0.key.hasPrefix("CONCORD_OTEL_") }
        environment["OTEL_BSP_SCHEDULE_DELAY"] = "50"
        return environment
    }

    static func randomHex(bytes: Int) -> String {
        (0..<bytes).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
    }

    @Test("a GET with a traceparent: the server span is the caller's child, the cache spans are under it, and the answer names it in traceresponse")
    func httpSpanParentsTheCacheSpans() async throws {
        try await withRedisServer { redis in
            let receiver = OTLPTraceReceiver()
            try await receiver.run { collectorPort in
                let upstream = UpstreamServer()
                upstream.set("user/7", "seven")
                try await upstream.run { upstreamPort in
                    let arguments = [
                        "--redis", redis.url, "--origin", "http://127.0.0.1:\(upstreamPort)/items/{key}",
                        "--otel-endpoint", "http://127.0.0.1:\(collectorPort)", "--otel-service-name", "concord-trace-test",
                    ]
                    try await withNode(arguments, environment: Self.environment, name: "traced") { node in
                        let client = node.client()
                        let ready = await eventually(timeout: TestBounds.condition) { (try? await client.ready()) == true }
                        #expect(ready, "the node never became ready:\n\(node.output.text)")

                        let traceID = Self.randomHex(bytes: 16)
                        let callerSpanID = Self.randomHex(bytes: 8)
                        let response = try await client.request(
                            .GET, "/v1/cache/user%2F7", headers: [("traceparent", "00-\(traceID)-\(callerSpanID)-01")])
                        #expect(response.status == 200)
                        #expect(response.text == "seven")
                        #expect(response.source == "origin")

                        let exported = await eventually(timeout: TestBounds.condition, pollingEvery: .milliseconds(20)) {
                            let names = Set(receiver.spans.filter { $0.traceID == traceID }.map(\.name))
                            return names.contains("concord.getOrSet") && names.contains("concord.l2.read")
                                && receiver.spans.contains { $0.traceID == traceID && $0.kind == 2 }
                        }
                        let trace = receiver.spans.filter { $0.traceID == traceID }
                        #expect(exported, "spans of trace \(traceID) not all exported; got:\n\(trace.map(\.description).joined(separator: "\n"))\nnode:\n\(node.output.text)")
                        #expect(receiver.failures.isEmpty, "\(receiver.failures)")
                        #expect(receiver.contentTypes.allSatisfy { $0 == "application/x-protobuf" }, "\(receiver.contentTypes)")

                        let servers = trace.filter { $0.kind == 2 }
                        try #require(servers.count == 1, "\(trace)")
                        let server = servers[0]
                        #expect(server.parentSpanID == callerSpanID)
                        #expect(server.attributes["http.request.method"] == "GET")
                        #expect(server.attributes["url.path"] == "/v1/cache/user%2F7")
                        #expect(server.attributes["http.response.status_code"] == "200")
                        #expect(server.resource["service.name"] == "concord-trace-test")
                        #expect(server.resource["service.instance.id"] == "traced")

                        let getOrSet = try #require(trace.first { $0.name == "concord.getOrSet" })
                        #expect(getOrSet.parentSpanID == server.spanID)
                        #expect(getOrSet.attributes["concord.hit_level"] == "factory")
                        #expect(getOrSet.attributes["concord.key"] == "user/7")
                        // Every other span of the trace (L2 read, factory, the origin's request)
                        // descends from the server span.
                        let byID = Dictionary(trace.map { ($0.spanID, $0) }, uniquingKeysWith: { first, _ in first })
                        for span in trace where span.spanID != server.spanID {
                            var parent = span.parentSpanID
                            var hops = 0
                            while parent != server.spanID, let next = byID[parent], hops < trace.count {
                                parent = next.parentSpanID
                                hops += 1
                            }
                            #expect(parent == server.spanID, "\(span) does not descend from the server span \(server.spanID)")
                        }

                        // W3C Trace Context level 2: the answer names the server span.
                        #expect(response.header("traceresponse") == "00-\(traceID)-\(server.spanID)-01")

                        // Probes are not traced: the readiness polls above came before the GET,
                        // so their spans would have been exported by now.
                        #expect(!receiver.spans.contains { $0.attributes["url.path"] == "/ready" || $0.attributes["url.path"] == "/health" })
                    }
                }
            }
        }
    }

    @Test("sampling is parent-based: with --otel-sample-ratio 0, a request without a traceparent is not recorded, one whose caller sampled it is")
    func parentBasedSampling() async throws {
        try await withRedisServer { redis in
            let receiver = OTLPTraceReceiver()
            try await receiver.run { collectorPort in
                let arguments = ["--redis", redis.url, "--otel-endpoint", "http://127.0.0.1:\(collectorPort)", "--otel-sample-ratio", "0"]
                try await withNode(arguments, environment: Self.environment, name: "sampled") { (node: SpawnedNode) async throws in
                    let client = node.client()
                    let ready = await eventually(timeout: TestBounds.condition) { (try? await client.ready()) == true }
                    #expect(ready, "the node never became ready:\n\(node.output.text)")

                    // First a request that starts its own trace: not sampled at ratio 0.
                    let root = try await client.set("k", value: Array("v".utf8))
                    #expect(root.status == 200)
                    let rootContext = try #require(root.header("traceresponse"), "\(root.headers)")
                    #expect(rootContext.hasSuffix("-00"), "\(rootContext)")

                    // Then one whose caller sampled it: recorded, whatever the ratio.
                    let traceID = Self.randomHex(bytes: 16)
                    let sampled = try await client.request(.GET, "/v1/cache/k", headers: [("traceparent", "00-\(traceID)-\(Self.randomHex(bytes: 8))-01")])
                    #expect(sampled.text == "v")
                    #expect(sampled.header("traceresponse")?.hasSuffix("-01") == true)
                    let exported = await eventually(timeout: TestBounds.condition, pollingEvery: .milliseconds(20)) {
                        receiver.spans.contains { $0.traceID == traceID && $0.kind == 2 }
                    }
                    #expect(exported, "the sampled request's server span was not exported:\n\(node.output.text)")
                    // Spans go out in the order they end, so the first request's would have come
                    // before: none of another trace may be there.
                    let others = receiver.spans.filter { $0.traceID != traceID }
                    #expect(others.isEmpty, "\(others)")
                }
            }
        }
    }

    @Test("a collector that cannot be reached: the node keeps serving and logs the failed exports")
    func unreachableCollector() async throws {
        try await withRedisServer { redis in
            // A port nothing listens on: every export is refused at once.
            let closedPort = try FreePort.next()
            let arguments = ["--redis", redis.url, "--otel-endpoint", "http://127.0.0.1:\(closedPort)"]
            // The HTTP client keeps retrying a refused connection until the export's timeout
            // (10 s by default): 1 s keeps the wait short.
            var environment = Self.environment
            environment["OTEL_EXPORTER_OTLP_TRACES_TIMEOUT"] = "1000"
            try await withNode(arguments, environment: environment, name: "unexported") { (node: SpawnedNode) async throws in
                let client = node.client()
                let ready = await eventually(timeout: TestBounds.condition) { (try? await client.ready()) == true }
                #expect(ready, "the node never became ready:\n\(node.output.text)")
                #expect(node.output.text.contains("tracing: exporting spans over OTLP/HTTP"), "\(node.output.text)")

                #expect(try await client.set("k", value: Array("v".utf8)).status == 200)
                #expect(try await client.get("k").text == "v")
                let logged = await eventually(timeout: TestBounds.condition, pollingEvery: .milliseconds(20)) {
                    node.output.text.contains("Failed to export batch")
                }
                #expect(logged, "no failed export logged:\n\(node.output.text)")
                // Still serving after the failures, and still alive.
                #expect(try await client.get("k").text == "v")
                #expect(try await client.health())
            }
        }
    }

    @Test("a bad --otel-endpoint stops the node at start with the flag named", arguments: [
        ("ftp://127.0.0.1:4318", "the scheme must be http or https"),
        ("127.0.0.1:4318", "expected http(s)://host[:port][/path]"),
        ("http://", "names no host"),
        ("http://user:secret@127.0.0.1:4318", "must not hold credentials"),
    ])
    func badEndpoint(url: String, reason: String) async throws {
        let result = try await runConcord(["node", "--port", "0", "--otel-endpoint", url], environment: Self.environment)
        #expect(result.status == 64, "\(result.output)")
        #expect(result.output.contains("Error: --otel-endpoint:"), "\(result.output)")
        #expect(result.output.contains("is not an OTLP/HTTP collector URL: \(reason)"), "\(result.output)")
        #expect(!result.output.contains("secret"), "the password reached the output:\n\(result.output)")
    }
}
