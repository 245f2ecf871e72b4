import ConcordNode
import ConcordProcess
import ConcordTesting
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Connection and request limits, and what reaches the log, on real `concord node` processes.
@Suite("Node limits", .serialized)
struct NodeLimitsTests {
    @Test("--max-connections: a connection past the limit is served only once another closes")
    func maxConnections() async throws {
        try await withNode(["--redis", "redis://127.0.0.1:1", "--max-connections", "2"]) { node async throws in
            var held: [RawConnection] = []
            for _ in 0..<2 {
                let connection = try RawConnection(port: node.port)
                try connection.send("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                #expect(await connection.read(until: "}").text.hasPrefix("HTTP/1.1 200"))
                held.append(connection)
            }
            // The third is accepted by the kernel but not by the node: no answer while two are open.
            let third = try RawConnection(port: node.port)
            try third.send("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            let waiting = await third.read(until: "}")
            #expect(waiting.text.isEmpty, "answered past the limit: \(waiting.text)")
            held[0].close()
            let served = await third.read(until: "}")
            #expect(served.text.hasPrefix("HTTP/1.1 200"), "\(served.text)")
        }
    }

    @Test("--request-timeout closes a connection that trickles its body, however steadily")
    func trickledBody() async throws {
        try await withNode(["--redis", "redis://127.0.0.1:1", "--request-timeout", "3s", "--idle-timeout", "60s"]) { node async throws in
            let connection = try RawConnection(port: node.port)
            try connection.send("PUT /v1/cache/trickled HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 160\r\n\r\n")
            // One byte every 250 ms: each resets an idle timer, and the whole body would take 40 s.
            let trickle = Task {
                for _ in 0..<160 {
                    guard (try? connection.send("x")) != nil else { return false }
                    try? await Task.sleep(for: .milliseconds(250))
                }
                return true
            }
            // Each read waits at most 5 s for a byte or the close; a loaded machine may need more than one.
            var answer = await connection.read()
            for _ in 0..<5 where !answer.closed && answer.text.isEmpty { answer = await connection.read() }
            #expect(answer.closed, "the node kept a trickling request open: \(answer.text)")
            let completed = await trickle.value
            #expect(!completed, "the whole body went through")
            #expect(try await node.client().get("trickled").status == 404)
            // A trickled head is cut off the same way.
            let head = try RawConnection(port: node.port)
            let headTrickle = Task {
                for byte in ("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + String(repeating: "a", count: 160)).utf8 {
                    guard (try? head.send([byte])) != nil else { return }
                    try? await Task.sleep(for: .milliseconds(250))
                }
            }
            var headAnswer = await head.read()
            for _ in 0..<5 where !headAnswer.closed && headAnswer.text.isEmpty { headAnswer = await head.read() }
            #expect(headAnswer.closed)
            headTrickle.cancel()
            #expect(try await node.client().health())
        }
    }

    @Test("control characters in keys are escaped in the log: no forged lines")
    func logInjection() async throws {
        // Redis is unreachable, so the write is queued and the key is logged at debug level.
        try await withNode(["--redis", "redis://127.0.0.1:1", "--log-level", "debug"]) { node async throws in
            let key = "evil\nFORGED-LINE level=critical \u{1B}[31m"
            #expect(try await node.client().set(key, value: Array("v".utf8)).status == 200)
            let logged = await eventually { node.output.all.contains("evil\\nFORGED-LINE") }
            #expect(logged, "\(node.output.all)")
            let lines = node.output.all.split(separator: "\n")
            #expect(!lines.contains { $0.hasPrefix("FORGED-LINE") }, "\(node.output.all)")
            #expect(!node.output.all.contains("\u{1B}"))
        }
    }
}
