#if canImport(Glibc)
import Glibc
#endif
@testable import ConcordBench
import ConcordProcess
import ConcordRedis
import ConcordTesting
import Foundation
import Logging
import Synchronization
import Testing

/// The node suite's latency client: it frames HTTP and RESP responses exactly, refuses any other
/// answer with a typed error, and reports a closed connection as such. No assertion is on time.
@Suite("One-in-flight latency client", .timeLimit(.minutes(2)))
struct OneInFlightClientTests {
    private func scan(_ framing: OneInFlightFraming, _ text: String) throws(OneInFlightClientError) -> OneInFlightFraming.Scan {
        let bytes = Array(text.utf8)
        let result = bytes.withUnsafeBytes { buffer in
            Result { () throws(OneInFlightClientError) in try framing.scan(buffer) }
        }
        return try result.get()
    }

    private func scanError(_ framing: OneInFlightFraming, _ text: String) -> OneInFlightClientError? {
        do {
            _ = try scan(framing, text)
            return nil
        } catch {
            return error
        }
    }

    @Test func anHTTPResponseIsWholeOnlyWithItsBody() throws {
        let http = OneInFlightFraming.http(expectedStatus: 200)
        let response = "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nCONTENT-LENGTH: 5\r\n\r\nhello"
        #expect(try scan(http, response) == .complete(length: response.utf8.count))
        for cut in [0, 8, 20, response.utf8.count - 9, response.utf8.count - 1] {
            #expect(try scan(http, String(response.utf8.prefix(cut))!) == .incomplete)
        }
        let empty = "HTTP/1.1 200 OK\r\nContent-Length:0\r\n\r\n"
        #expect(try scan(http, empty) == .complete(length: empty.utf8.count))
    }

    @Test func anHTTPResponseThatIsNotTheExpectedOneIsATypedError() {
        let http = OneInFlightFraming.http(expectedStatus: 200)
        #expect(scanError(http, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n") == .unexpectedStatus(404))
        let badReplies = [
            ("SPDY/9 200 OK\r\nContent-Length: 0\r\n\r\n", "a bad status line"),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", "a chunked response"),
            ("HTTP/1.1 200 OK\r\nServer: x\r\n\r\nhello", "a response without Content-Length"),
            ("HTTP/1.1 200 OK\r\nContent-Length: -3\r\n\r\n", "a negative Content-Length"),
            ("HTTP/1.1 200 OK\r\nno colon here\r\nContent-Length: 0\r\n\r\n", "a header line without a colon"),
        ]
        for (response, what) in badReplies {
            guard case .badReply = scanError(http, response) else {
                Issue.record("\(what) was accepted")
                continue
            }
        }
    }

    @Test func aRESPBulkStringIsWholeOnlyWithItsCRLF() throws {
        let resp = OneInFlightFraming.respBulkString
        #expect(try scan(resp, "$3\r\nabc\r\n") == .complete(length: 9))
        #expect(try scan(resp, "$0\r\n\r\n") == .complete(length: 6))
        for partial in ["", "$", "$3", "$3\r\n", "$3\r\nab", "$3\r\nabc\r"] {
            #expect(try scan(resp, partial) == .incomplete)
        }
    }

    @Test func aRESPReplyOtherThanABulkStringIsATypedError() {
        let resp = OneInFlightFraming.respBulkString
        #expect(scanError(resp, "-ERR wrong kind\r\n") == .serverError("ERR wrong kind"))
        for bad in ["$-1\r\n", "+OK\r\n", ":1\r\n", "*1\r\n$1\r\na\r\n", "$x\r\n", "$3\r\nabcXY", "!junk\r\n"] {
            guard case .badReply = scanError(resp, bad) else {
                Issue.record("\(bad.debugDescription) was not refused as a bad reply")
                continue
            }
        }
    }

    @Test func measuresEveryRequestAgainstARealRedisServer() async throws {
        try await withRedisServer { server in
            var configuration = server.configuration()
            configuration.connectTimeout = TestBounds.reply
            configuration.commandTimeout = TestBounds.reply
            let client = RedisClient(configuration: configuration, logger: Logger(label: "test.one-in-flight"))
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await client.run() }
                try await client.waitUntilConnected(timeout: TestBounds.connect)
                _ = try await client.send("SET", "one-in-flight", "value")
                group.cancelAll()
            }
            var lean = OneInFlightClient.respGet(port: server.port, key: "one-in-flight")
            lean.warmUp = 3
            let latencies = try await lean.measure(budget: BenchBudget(maxCount: 40, maxDuration: TestBounds.condition))
            #expect(latencies.nanoseconds.count == 40)
            #expect(latencies.nanoseconds == latencies.nanoseconds.sorted())
            #expect(latencies.percentileMicroseconds(0.5) <= latencies.percentileMicroseconds(1.0))

            var missing = OneInFlightClient.respGet(port: server.port, key: "never-set")
            missing.warmUp = 0
            await #expect(throws: OneInFlightClientError.badReply("a null reply: the key does not exist")) {
                _ = try await missing.measure(budget: BenchBudget(maxCount: 1, maxDuration: TestBounds.condition))
            }
        }
    }

    @Test func aWholeHTTPAnswerIsMeasuredAndAnythingElseIsRefused() async throws {
        let good = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
        let server = try CannedServer.start(answer: Array(good.utf8))
        defer { server.stop() }
        var client = OneInFlightClient.http(port: server.port, path: "/v1/cache/k")
        client.warmUp = 1
        let latencies = try await client.measure(budget: BenchBudget(maxCount: 5, maxDuration: TestBounds.condition))
        #expect(latencies.nanoseconds.count == 5)

        let twice = try CannedServer.start(answer: Array((good + good).utf8))
        defer { twice.stop() }
        client.port = twice.port
        await #expect(throws: OneInFlightClientError.badReply("\(good.utf8.count) bytes after the response")) {
            _ = try await client.measure(budget: BenchBudget(maxCount: 5, maxDuration: TestBounds.condition))
        }

        let garbage = try CannedServer.start(answer: Array("!not http at all\r\n\r\n".utf8))
        defer { garbage.stop() }
        client.port = garbage.port
        do {
            _ = try await client.measure(budget: BenchBudget(maxCount: 5, maxDuration: TestBounds.condition))
            Issue.record("garbage was measured as an answer")
        } catch let error as OneInFlightClientError {
            guard case .badReply = error else {
                Issue.record("garbage gave \(error), not a bad reply")
                return
            }
        }
    }

    @Test func aConnectionClosedBeforeTheWholeAnswerIsReportedClosed() async throws {
        let closing = try CannedServer.start(answer: nil)
        defer { closing.stop() }
        var client = OneInFlightClient.respGet(port: closing.port, key: "k")
        client.warmUp = 0
        await #expect(throws: OneInFlightClientError.closed) {
            _ = try await client.measure(budget: BenchBudget(maxCount: 5, maxDuration: TestBounds.condition))
        }

        let cut = try CannedServer.start(answer: Array("$10\r\nabc".utf8), closeAfterAnswer: true)
        defer { cut.stop() }
        client.port = cut.port
        await #expect(throws: OneInFlightClientError.closed) {
            _ = try await client.measure(budget: BenchBudget(maxCount: 5, maxDuration: TestBounds.condition))
        }
    }
}

/// A one-connection TCP server on 127.0.0.1 that answers every read with the same bytes (or, with
/// no answer, closes the connection after its first read): the wrong answers no real server gives.
private final class CannedServer: Sendable {
    let port: Int
    private let listener: Int32

    private init(port: Int, listener: Int32) {
        self.port = port
        self.listener = listener
    }

    static func start(answer: [UInt8]?, closeAfterAnswer: Bool = false) throws -> CannedServer {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard listener >= 0 else { throw CannedServerError() }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = in_addr_t(UInt32(0x7F00_0001).bigEndian)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(listener, pointer, length) == 0 && listen(listener, 4) == 0 && getsockname(listener, pointer, &length) == 0
            }
        }
        guard bound else {
            close(listener)
            throw CannedServerError()
        }
        let server = CannedServer(port: Int(UInt16(bigEndian: address.sin_port)), listener: listener)
        let thread = Thread {
            let connection = accept(listener, nil, nil)
            guard connection >= 0 else { return }
            defer { close(connection) }
            var buffer = [UInt8](repeating: 0, count: 4096)
            // Bounded: the client's runs in these tests send a handful of requests.
            for _ in 0..<1_000 {
                let count = buffer.withUnsafeMutableBytes { read(connection, $0.baseAddress!, $0.count) }
                guard count > 0, let answer else { return }
                let written = answer.withUnsafeBytes { write(connection, $0.baseAddress!, $0.count) }
                guard written == answer.count, !closeAfterAnswer else { return }
            }
        }
        thread.start()
        return server
    }

    /// Stops accepting (a thread still in `accept` returns).
    func stop() {
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }
}

private struct CannedServerError: Error {}
