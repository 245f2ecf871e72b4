import ConcordProcess
import Concord
import ConcordNode
import ConcordTesting
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Prometheus
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A logger that prints nothing; node tests run many nodes and their logs would drown failures.
let quietLogger = Logger(label: "concord.test") { _ in SwiftLogNoOpLogHandler() }

/// A node configuration for tests: a unique id, short shutdown, otherwise the node defaults.
func testConfiguration(_ configure: (inout NodeConfiguration) -> Void = { _ in }) -> NodeConfiguration {
    var configuration = NodeConfiguration()
    configuration.nodeID = "t-" + String(UInt32.random(in: .min ... .max), radix: 16)
    configuration.port = 0
    configuration.shutdownTimeout = .milliseconds(500)
    // The node's 100 ms soft timeout would let a slow origin read on a loaded test machine turn
    // into a (correct, flagged) stale answer; tests of other behaviour must not depend on timing.
    configuration.factorySoftTimeout = nil
    configuration.factoryHardTimeout = .seconds(30)
    configure(&configuration)
    return configuration
}

/// A node on in-memory L2 and backplane (`ConcordTesting`), for tests of the HTTP surface.
///
/// Its cache is never run, so its backplane never connects: with the node's 5 s
/// `maxDisconnectedStaleness`, a test still running 5 s after the node was made (a loaded
/// machine, a long pipeline) would find every L1 value counting as fail-safe only and every
/// read going on to L2. The allowance is an hour here, so no test of the surface depends on how
/// fast the machine is; tests of that rule set their own. For the same reason entries last an
/// hour, not the node's 30 s: a loaded full run took 188 s for one pipelined RESP test, and keys
/// set at its start had expired before its last reads.
func makeMemoryNode(
    store: InMemoryCacheStore = InMemoryCacheStore(),
    origin: (any Origin)? = nil,
    _ configure: (inout NodeConfiguration) -> Void = { _ in }
) throws -> CacheNode {
    let configuration = testConfiguration { configuration in
        configuration.maxDisconnectedStaleness = .seconds(3600)
        configuration.duration = .seconds(3600)
        configure(&configuration)
    }
    let cache = try HybridCache(
        configuration: configuration.cacheConfiguration,
        distributed: InMemoryDistributedCache(store: store),
        backplane: InMemoryBackplane(store: store),
        logger: quietLogger
    )
    return try CacheNode(
        configuration: configuration, cache: cache, origin: origin,
        readiness: .backplane(of: cache), registry: PrometheusCollectorRegistry(), logger: quietLogger
    )
}

/// A node on a real Redis, built the way `concord node` builds it.
func makeRedisNode(_ server: RedisServer, _ configure: (inout NodeConfiguration) -> Void = { _ in }) throws -> CacheNode {
    let configuration = testConfiguration { configuration in
        configuration.redisURL = server.url
        configure(&configuration)
    }
    return try CacheNode(configuration: configuration, registry: PrometheusCollectorRegistry(), logger: quietLogger)
}

/// A fresh temp dir, removed by the caller with `removeTemporaryDirectory`.
func makeTemporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("concord-node-test-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// Runs `body` with a SQLite origin in a temp dir that is removed afterwards.
func withSQLiteOrigin<T>(_ body: (SQLiteOrigin, String) async throws -> T) async throws -> T {
    let directory = try makeTemporaryDirectory()
    defer { try? FileManager.default.removeItem(at: directory) }
    let path = directory.appendingPathComponent("origin.db").path
    let origin = try SQLiteOrigin(path: path)
    return try await body(origin, path)
}

extension TestClientProtocol {
    func get(_ path: String, headers: HTTPFields = [:]) async throws -> TestResponse {
        try await execute(uri: path, method: .get, headers: headers)
    }

    func put(_ path: String, _ body: String) async throws -> TestResponse {
        try await execute(uri: path, method: .put, body: ByteBuffer(string: body))
    }

    func delete(_ path: String) async throws -> TestResponse {
        try await execute(uri: path, method: .delete)
    }

    func post(_ path: String, _ body: String) async throws -> TestResponse {
        try await execute(uri: path, method: .post, body: ByteBuffer(string: body))
    }

    /// Polls `path` until it answers `status`, for at most `timeout`; returns the last answer.
    @discardableResult
    func poll(_ path: String, until status: HTTPResponse.Status, timeout: Duration = TestBounds.connect) async throws -> TestResponse {
        var last = try await get(path)
        _ = try await eventually(timeout: timeout, pollingEvery: .milliseconds(20)) {
            if last.status == status { return true }
            last = try await get(path)
            return last.status == status
        }
        return last
    }
}

extension TestResponse {
    var text: String { String(buffer: body) }
    var version: String? { headers[HTTPField.Name("Concord-Version")!] }
    var source: String? { headers[HTTPField.Name("Concord-Source")!] }
    var stale: String? { headers[HTTPField.Name("Concord-Stale")!] }
}

/// The API's error body.
struct ErrorEnvelope: Decodable, Equatable {
    struct Detail: Decodable, Equatable {
        var code: String
        var message: String
    }

    var error: Detail
}

/// Checks the status and that the body is `{"error": {"code": code, "message": non-empty}}`.
func expectError(_ response: TestResponse, _ status: HTTPResponse.Status, code: String, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(response.status == status, "body: \(response.text)", sourceLocation: sourceLocation)
    #expect(response.headers[.contentType] == "application/json", sourceLocation: sourceLocation)
    let envelope = try? JSONDecoder().decode(ErrorEnvelope.self, from: Data(buffer: response.body))
    #expect(envelope?.error.code == code, "body: \(response.text)", sourceLocation: sourceLocation)
    #expect(envelope?.error.message.isEmpty == false, "body: \(response.text)", sourceLocation: sourceLocation)
}

/// A raw TCP connection to 127.0.0.1, for requests no well-behaved client would send. Its file
/// descriptor is used by one task at a time.
final class RawConnection: @unchecked Sendable {
    let fd: Int32

    init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestError("socket() failed") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            Glibc.close(fd)
            throw TestError("connect() to port \(port) failed: errno \(errno)")
        }
        // Reads in these tests wait for at most this long, so a hang fails instead of blocking.
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    private let closed = Mutex(false)

    deinit { close() }

    /// Closes the socket now (once; later calls and deinit do nothing).
    func close() {
        let first = closed.withLock { closed in
            defer { closed = true }
            return !closed
        }
        if first { Glibc.close(fd) }
    }

    func send(_ text: String) throws {
        let bytes = Array(text.utf8)
        try send(bytes)
    }

    func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard sent > 0 else { throw TestError("send() failed: errno \(errno)") }
            offset += sent
        }
    }

    /// Reads on a thread of its own (a blocking `recv` must not hold one of the few threads of
    /// the concurrency pool) until the peer closes, `marker` is seen, or 5s pass.
    func read(until marker: String? = nil) async -> (text: String, closed: Bool) {
        await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                continuation.resume(returning: self.blockingRead(until: marker))
            }
        }
    }

    private func blockingRead(until marker: String?, limit: Int = 1 << 20) -> (text: String, closed: Bool) {
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16_384)
        while received.count < limit {
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count == 0 { return (String(decoding: received, as: UTF8.self), true) }
            if count < 0 { break }
            received.append(contentsOf: chunk[0..<count])
            if let marker, String(decoding: received, as: UTF8.self).contains(marker) { break }
        }
        return (String(decoding: received, as: UTF8.self), false)
    }
}

struct TestError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
