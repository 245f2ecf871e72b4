import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// A small HTTP/1.1 client for a node's API, for the CLI, scripts and tests: one connection per
/// request (`Connection: close`), every request bounded by `timeout`. Keys are percent-encoded
/// with `CacheKeyPath`, so any key round-trips.
public struct NodeClient: Sendable {
    public let host: String
    public let port: Int
    public var timeout: Duration
    /// Responses larger than this are refused rather than buffered.
    public var maxResponseBytes: Int = 64 << 20

    public init(host: String, port: Int, timeout: Duration = .seconds(5)) {
        self.host = host
        self.port = port
        self.timeout = timeout
    }

    /// Parses `http://host:port` (a trailing `/` is fine; the scheme may be left out).
    public init(url: String, timeout: Duration = .seconds(5)) throws(NodeClientError) {
        var rest = Substring(url.trimmingASCIIWhitespace())
        if rest.hasPrefix("http://") {
            rest = rest.dropFirst("http://".count)
        } else if rest.contains("://") {
            throw NodeClientError(.invalidURL, "'\(url)': only http:// is supported")
        }
        while rest.hasSuffix("/") { rest = rest.dropLast() }
        guard !rest.contains("/"), !rest.contains("?") else {
            throw NodeClientError(.invalidURL, "'\(url)': give the node's address only, like http://127.0.0.1:7001")
        }
        let host: Substring
        let portText: Substring?
        if rest.hasPrefix("["), let close = rest.firstIndex(of: "]") {
            host = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            portText = after.hasPrefix(":") ? after.dropFirst() : (after.isEmpty ? nil : after)
        } else if let colon = rest.lastIndex(of: ":") {
            host = rest[..<colon]
            portText = rest[rest.index(after: colon)...]
        } else {
            host = rest
            portText = nil
        }
        guard !host.isEmpty else { throw NodeClientError(.invalidURL, "'\(url)': no host") }
        var port = 80
        if let portText {
            guard let parsed = Int(portText), (1...65_535).contains(parsed) else {
                throw NodeClientError(.invalidURL, "'\(url)': '\(portText)' is not a port")
            }
            port = parsed
        }
        self.init(host: String(host), port: port, timeout: timeout)
    }

    /// `http://host:port`.
    public var baseURL: String { "http://\(host.contains(":") ? "[\(host)]" : host):\(port)" }

    // MARK: - API

    /// `GET /v1/cache/{key}`.
    public func get(_ key: String) async throws -> NodeResponse {
        try await send(.GET, path: CacheKeyPath.path(for: key))
    }

    /// `PUT /v1/cache/{key}`; `background` asks the node to write Redis after answering.
    public func set(_ key: String, value: [UInt8], background: Bool = false) async throws -> NodeResponse {
        try await send(.PUT, path: CacheKeyPath.path(for: key) + (background ? "?background=true" : ""), body: value)
    }

    /// `DELETE /v1/cache/{key}`.
    public func delete(_ key: String) async throws -> NodeResponse {
        try await send(.DELETE, path: CacheKeyPath.path(for: key))
    }

    /// `POST /v1/invalidate` with `{"keys": [...]}`.
    public func invalidate(_ keys: [String]) async throws -> NodeResponse {
        let body = try JSONEncoder().encode(InvalidateBody(keys: keys))
        return try await send(.POST, path: "/v1/invalidate", body: Array(body), headers: [("Content-Type", "application/json")])
    }

    /// Any request; the path must already be percent-encoded.
    public func send(_ method: HTTPMethod, path: String, body: [UInt8]? = nil, headers: [(String, String)] = []) async throws -> NodeResponse {
        let timeout = self.timeout
        return try await withThrowingTaskGroup(of: NodeResponse.self) { group in
            group.addTask { try await self.exchange(method, path: path, body: body, headers: headers) }
            group.addTask {
                try await Task.sleep(for: timeout)
                throw NodeClientError(.timeout, "\(method.rawValue) \(self.baseURL)\(path) got no answer within \(timeout)")
            }
            defer { group.cancelAll() }
            guard let first = try await group.next() else { throw CancellationError() }
            return first
        }
    }

    // MARK: - Transport

    private func exchange(_ method: HTTPMethod, path: String, body: [UInt8]?, headers: [(String, String)]) async throws -> NodeResponse {
        let channel: NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>
        do {
            channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(.nanoseconds(timeout.nanosecondsClamped))
                .connect(host: host, port: port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(wrappingChannelSynchronously: channel)
                    }
                }
        } catch {
            throw NodeClientError(.connectionFailed, "cannot connect to \(baseURL): \(error)")
        }
        do {
            return try await exchange(on: channel, method, path: path, body: body, headers: headers)
        } catch let error as NodeClientError {
            throw error
        } catch {
            throw NodeClientError(.connectionFailed, "\(method.rawValue) \(baseURL)\(path) failed: \(error)")
        }
    }

    private func exchange(
        on channel: NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>,
        _ method: HTTPMethod, path: String, body: [UInt8]?, headers: [(String, String)]
    ) async throws -> NodeResponse {
        let limit = maxResponseBytes
        let baseURL = self.baseURL
        let hostHeader = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        return try await channel.executeThenClose { inbound, outbound in
            var head = HTTPRequestHead(version: .http1_1, method: method, uri: path)
            head.headers.add(name: "Host", value: hostHeader)
            head.headers.add(name: "Connection", value: "close")
            head.headers.add(name: "User-Agent", value: "concord")
            if let body {
                head.headers.add(name: "Content-Length", value: String(body.count))
            }
            for (name, value) in headers { head.headers.add(name: name, value: value) }
            var parts: [HTTPClientRequestPart] = [.head(head)]
            if let body, !body.isEmpty { parts.append(.body(.byteBuffer(ByteBuffer(bytes: body)))) }
            parts.append(.end(nil))
            // One write, one flush. If the node answers and closes before all of a large body
            // is sent (a 413), the write fails but the answer is still there to read.
            var writeError: (any Error)?
            do {
                try await outbound.write(contentsOf: parts)
            } catch {
                writeError = error
            }

            var response: NodeResponse?
            var collected = ByteBuffer()
            for try await part in inbound {
                switch part {
                case .head(let responseHead):
                    response = NodeResponse(status: Int(responseHead.status.code), headers: responseHead.headers.map { ($0.name, $0.value) }, body: [])
                case .body(var chunk):
                    guard collected.readableBytes + chunk.readableBytes <= limit else {
                        throw NodeClientError(.protocolError, "the response from \(baseURL) is larger than \(limit) bytes")
                    }
                    collected.writeBuffer(&chunk)
                case .end:
                    guard var response else { throw NodeClientError(.protocolError, "\(baseURL) sent a response without a head") }
                    response.body = Array(collected.readableBytesView)
                    return response
                }
            }
            if let writeError { throw NodeClientError(.connectionFailed, "sending to \(baseURL) failed: \(writeError)") }
            throw NodeClientError(.protocolError, "\(baseURL) closed the connection before the response ended")
        }
    }
}
