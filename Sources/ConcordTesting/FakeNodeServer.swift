import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A stand-in for `concord node` speaking the node HTTP API over NIOHTTP1 on 127.0.0.1, so
/// `NodeClient` and the chaos workload can be tested without the real server and with its
/// connections counted and dropped at will. `/hang` never answers; `/drop` closes without answering.
public final class FakeNodeServer: Sendable {
    /// What the server holds and has seen; tests read it and flip `ready`.
    public struct State: Sendable {
        public var values: [String: (body: [UInt8], version: Int)] = [:]
        public var version = 0
        /// What `/ready` answers: 200 when true, 503 when false.
        public var ready = true
        public var invalidated: [[String]] = []
        public var backgroundPuts = 0
        /// Connections accepted so far.
        public var accepted = 0
        /// "METHOD URI" of every request, in order.
        public var requests: [String] = []
        /// Open connections.
        public var channels: [ObjectIdentifier: any Channel] = [:]
    }

    public let port: Int
    private let box: StateBox
    private let channel: any Channel

    /// Reads or changes the shared state, for assertions and for switching behaviour.
    public func withState<T>(_ body: (inout State) -> T) -> T {
        box.state.withLock { body(&$0) }
    }

    fileprivate init(port: Int, channel: any Channel, box: StateBox) {
        self.port = port
        self.channel = channel
        self.box = box
    }

    /// Listens on a free port.
    public static func start() async throws -> FakeNodeServer {
        let box = StateBox()
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                box.track(channel)
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(FakeNodeHandler(box: box))
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
        return FakeNodeServer(port: channel.localAddress!.port!, channel: channel, box: box)
    }

    /// Connections accepted so far.
    public var accepted: Int { withState { $0.accepted } }

    /// Closes every open connection from the server side, as an idle timeout would.
    public func dropConnections() {
        for channel in withState({ Array($0.channels.values) }) { channel.close(promise: nil) }
    }

    /// Closes every connection and stops listening.
    public func stop() async {
        dropConnections()
        try? await channel.close()
    }
}

/// Holds the server state so the handlers, created before the server object, can share it.
private final class StateBox: Sendable {
    let state = Mutex(FakeNodeServer.State())

    func track(_ channel: any Channel) {
        let id = ObjectIdentifier(channel)
        state.withLock {
            $0.accepted += 1
            $0.channels[id] = channel
        }
        channel.closeFuture.whenComplete { _ in
            self.state.withLock { _ = $0.channels.removeValue(forKey: id) }
        }
    }
}

private final class FakeNodeHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let box: StateBox
    private var head: HTTPRequestHead?
    private var body: [UInt8] = []

    init(box: StateBox) { self.box = box }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch Self.unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body = []
        case .body(var buffer):
            body += buffer.readBytes(length: buffer.readableBytes) ?? []
        case .end:
            guard let head else { return }
            respond(context: context, head: head)
        }
    }

    private func respond(context: ChannelHandlerContext, head: HTTPRequestHead) {
        let (path, query) = split(head.uri)
        box.state.withLock { $0.requests.append("\(head.method) \(head.uri)") }
        if path == "/hang" { return }
        if path == "/drop" {
            context.close(promise: nil)
            return
        }
        var status = HTTPResponseStatus.ok
        var headers = HTTPHeaders()
        var out: [UInt8] = []
        if path.hasPrefix("/v1/cache/") {
            let key = String(path.dropFirst("/v1/cache/".count)).removingPercentEncoding ?? ""
            switch head.method {
            case .GET:
                if let entry = box.state.withLock({ $0.values[key] }) {
                    out = entry.body
                    headers.add(name: "Concord-Version", value: "\(entry.version)")
                    headers.add(name: "Concord-Source", value: "memory")
                    headers.add(name: "Concord-Stale", value: key.hasPrefix("stale") ? "true" : "false")
                } else {
                    status = .notFound
                    out = Array(#"{"error":{"code":"not_found","message":"no such key"}}"#.utf8)
                }
            case .PUT:
                let body = self.body
                let version = box.state.withLock { state -> Int in
                    state.version += 1
                    state.values[key] = (body, state.version)
                    if query == "background=true" { state.backgroundPuts += 1 }
                    return state.version
                }
                out = Array(#"{"version":"\#(version)"}"#.utf8)
            case .DELETE:
                box.state.withLock { _ = $0.values.removeValue(forKey: key) }
                status = .noContent
            default:
                status = .methodNotAllowed
            }
        } else if path == "/v1/invalidate", head.method == .POST {
            struct Body: Decodable { var keys: [String] }
            if let decoded = try? JSONDecoder().decode(Body.self, from: Data(body)) {
                box.state.withLock { $0.invalidated.append(decoded.keys) }
            } else {
                status = .badRequest
            }
        } else if path == "/v1/stats" {
            out = Array(#"{"node":"fake","autoRecovery":{"queued":1,"flushed":1,"overflowed":0}}"#.utf8)
        } else if path == "/ready" {
            status = box.state.withLock { $0.ready } ? .ok : .serviceUnavailable
        } else if path == "/health" {
            status = .ok
        } else {
            status = .notFound
        }
        headers.add(name: "Content-Length", value: "\(out.count)")
        var responseHead = HTTPResponseHead(version: head.version, status: status, headers: headers)
        responseHead.headers.add(name: "Connection", value: head.isKeepAlive ? "keep-alive" : "close")
        context.write(Self.wrapOutboundOut(.head(responseHead)), promise: nil)
        if !out.isEmpty {
            context.write(Self.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: out)))), promise: nil)
        }
        let keepAlive = head.isKeepAlive
        let channel = context.channel
        context.writeAndFlush(Self.wrapOutboundOut(.end(nil))).whenComplete { _ in
            if !keepAlive { channel.close(promise: nil) }
        }
    }

    private func split(_ uri: String) -> (String, String?) {
        guard let mark = uri.firstIndex(of: "?") else { return (uri, nil) }
        return (String(uri[..<mark]), String(uri[uri.index(after: mark)...]))
    }
}
