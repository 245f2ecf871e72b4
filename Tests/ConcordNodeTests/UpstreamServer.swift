import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Synchronization

/// A real HTTP upstream for the node's HTTP origin, served by Hummingbird on a free loopback
/// port: `/items/**` answers from a table of values with ETags, honours `If-None-Match`, and
/// can be told to answer a status, stall until released, or add headers. Every request it
/// saw is recorded.
final class UpstreamServer: Sendable {
    struct Item: Sendable {
        var body: [UInt8]
        var etag: String?
        var lastModified: String?
        var cacheControl: String?
    }

    /// How `/items/<key>` answers.
    enum Behaviour: Sendable {
        case serve
        case status(Int)
        /// Answers nothing until `release()`.
        case stall
    }

    struct Seen: Sendable {
        var path: String
        var ifNoneMatch: String?
        var ifModifiedSince: String?
    }

    struct State: Sendable {
        var items: [String: Item] = [:]
        var behaviour: [String: Behaviour] = [:]
        var seen: [Seen] = []
    }

    let state = Mutex(State())
    /// Stalled answers waiting for `release()`; nil once released.
    private let waiting = Mutex<[CheckedContinuation<Void, Never>]?>([])

    /// Runs `body` with the upstream listening; its port is the argument.
    func run(_ body: @Sendable @escaping (Int) async throws -> Void) async throws {
        let router = Router()
        router.get("/items/**") { request, _ -> Response in
            let rawPath = request.head.path ?? ""
            let key = String(rawPath.dropFirst("/items/".count)).removingPercentEncoding ?? ""
            let ifNoneMatch = request.headers[.ifNoneMatch]
            let ifModifiedSince = request.headers[.ifModifiedSince]
            let (item, behaviour) = self.state.withLock { state in
                state.seen.append(Seen(path: rawPath, ifNoneMatch: ifNoneMatch, ifModifiedSince: ifModifiedSince))
                return (state.items[key], state.behaviour[key] ?? .serve)
            }
            switch behaviour {
            case .serve: break
            case .status(let code):
                return Response(status: .init(code: code), body: .init(byteBuffer: ByteBuffer(string: "upstream says \(code)")))
            case .stall:
                await self.waitForRelease()
                return Response(status: .serviceUnavailable)
            }
            guard let item else { return Response(status: .notFound, body: .init(byteBuffer: ByteBuffer(string: "no such item"))) }
            var headers = HTTPFields()
            if let etag = item.etag { headers[.eTag] = etag }
            if let lastModified = item.lastModified { headers[.lastModified] = lastModified }
            if let cacheControl = item.cacheControl { headers[.cacheControl] = cacheControl }
            if let etag = item.etag, ifNoneMatch == etag {
                return Response(status: .notModified, headers: headers)
            }
            if let lastModified = item.lastModified, item.etag == nil, ifModifiedSince == lastModified {
                return Response(status: .notModified, headers: headers)
            }
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: item.body)))
        }
        let application = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        defer { release() }
        try await application.test(.live) { client in
            guard let port = client.port else { throw CancellationError() }
            defer { self.release() }
            try await body(port)
        }
    }

    func set(_ key: String, _ body: String, etag: String? = nil, lastModified: String? = nil, cacheControl: String? = nil) {
        state.withLock { $0.items[key] = Item(body: Array(body.utf8), etag: etag, lastModified: lastModified, cacheControl: cacheControl) }
    }

    func behave(_ key: String, _ behaviour: Behaviour) {
        state.withLock { $0.behaviour[key] = behaviour }
    }

    var seen: [Seen] { state.withLock { $0.seen } }

    /// Lets every stalled answer go (with a 503), and every later one at once.
    func release() {
        let stalled = waiting.withLock { waiting in
            defer { waiting = nil }
            return waiting ?? []
        }
        for continuation in stalled { continuation.resume() }
    }

    private func waitForRelease() async {
        await withCheckedContinuation { continuation in
            let stalled = waiting.withLock { waiting -> Bool in
                guard waiting != nil else { return false }
                waiting!.append(continuation)
                return true
            }
            if !stalled { continuation.resume() }
        }
    }

    /// Requests now stalled.
    var stalledCount: Int { waiting.withLock { $0?.count ?? 0 } }
}
