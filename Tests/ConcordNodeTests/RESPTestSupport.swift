import Concord
import ConcordNode
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

/// Runs a RESP front end on `cache` on a free port for the duration of `body`.
func withRESPServer<T: Sendable>(
    cache: HybridCache,
    token: String? = nil,
    accessTokens: AccessTokens = AccessTokens(),
    maxConnections: Int = 1024,
    _ body: @Sendable (Int) async throws -> T
) async throws -> T {
    let (ports, announce) = AsyncStream<Int>.makeStream()
    let server = RESPServer(
        configuration: .init(port: 0, maxConnections: maxConnections, token: token, accessTokens: accessTokens),
        cache: cache, logger: quietLogger, onBound: { announce.yield($0) })
    return try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask {
            try await server.run()
            return nil
        }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else { throw RESPTestFailure("the RESP server did not bind") }
        let result = try await body(port)
        group.cancelAll()
        return result
    }
}

struct RESPTestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A raw TCP connection to a RESP server, to send exact bytes and read exact replies.
final class RESPTestConnection: Sendable {
    private let channel: any Channel
    private let received: NIOLockedValueBox<(bytes: [UInt8], closed: Bool)>

    private final class Collector: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let received: NIOLockedValueBox<(bytes: [UInt8], closed: Bool)>
        init(_ received: NIOLockedValueBox<(bytes: [UInt8], closed: Bool)>) { self.received = received }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let buffer = unwrapInboundIn(data)
            received.withLockedValue { $0.bytes += buffer.readableBytesView }
        }
        func channelInactive(context: ChannelHandlerContext) {
            received.withLockedValue { $0.closed = true }
        }
    }

    private init(channel: any Channel, received: NIOLockedValueBox<(bytes: [UInt8], closed: Bool)>) {
        self.channel = channel
        self.received = received
    }

    static func connect(port: Int) async throws -> RESPTestConnection {
        let received = NIOLockedValueBox<(bytes: [UInt8], closed: Bool)>(([], false))
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(Collector(received)) }
            }
            .connect(host: "127.0.0.1", port: port)
            .get()
        return RESPTestConnection(channel: channel, received: received)
    }

    func send(_ bytes: some Sequence<UInt8>) async throws {
        try await channel.writeAndFlush(ByteBuffer(bytes: Array(bytes)))
    }

    func send(_ text: String) async throws {
        try await send(Array(text.utf8))
    }

    /// Sends one command as an array of bulk strings, as clients do.
    func command(_ arguments: String...) async throws {
        try await send(Self.encode(arguments.map { Array($0.utf8) }))
    }

    static func encode(_ arguments: [[UInt8]]) -> [UInt8] {
        var bytes = Array("*\(arguments.count)\r\n".utf8)
        for argument in arguments {
            bytes += Array("$\(argument.count)\r\n".utf8) + argument + Array("\r\n".utf8)
        }
        return bytes
    }

    /// Reads `expected.utf8.count` bytes (waiting at most `timeout`) and returns them as text.
    func reply(length: Int, timeout: Duration = .seconds(20)) async throws -> String {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let ready: [UInt8]? = received.withLockedValue { state in
                guard state.bytes.count >= length else { return nil }
                let taken = Array(state.bytes.prefix(length))
                state.bytes.removeFirst(length)
                return taken
            }
            if let ready { return String(decoding: ready, as: UTF8.self) }
            if received.withLockedValue({ $0.closed }) { break }
            try await Task.sleep(for: .milliseconds(5))
        }
        let (bytes, closed) = received.withLockedValue { ($0.bytes, $0.closed) }
        throw RESPTestFailure("expected \(length) bytes, got \(bytes.count) (\(String(decoding: bytes, as: UTF8.self).debugDescription))\(closed ? ", connection closed" : "")")
    }

    /// Checks that the next reply is exactly `expected`, waiting at most `timeout` for it.
    func expectReply(_ expected: String, timeout: Duration = .seconds(20), sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let text = try await reply(length: expected.utf8.count, timeout: timeout)
        #expect(text == expected, sourceLocation: sourceLocation)
    }

    /// Reads one line-terminated reply (`+`, `-` or `:`).
    func line(timeout: Duration = .seconds(20)) async throws -> String {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let ready: [UInt8]? = received.withLockedValue { state in
                guard let end = state.bytes.indices.first(where: { $0 > 0 && state.bytes[$0 - 1] == 13 && state.bytes[$0] == 10 }) else { return nil }
                let taken = Array(state.bytes[...end])
                state.bytes.removeFirst(end + 1)
                return taken
            }
            if let ready { return String(decoding: ready, as: UTF8.self) }
            if received.withLockedValue({ $0.closed }) { break }
            try await Task.sleep(for: .milliseconds(5))
        }
        throw RESPTestFailure("no complete line within \(timeout)")
    }

    /// Whether the server closed the connection within `timeout`.
    func closedByServer(timeout: Duration = .seconds(20)) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if received.withLockedValue({ $0.closed }) { return true }
            try await Task.sleep(for: .milliseconds(5))
        }
        return false
    }

    func close() async {
        try? await channel.close()
    }
}

/// Runs a command-line client to completion, bounded in time; returns its exit status and output.
/// Output is collected by the pipe's readability handler and the exit is polled, so no thread
/// of the concurrency pool blocks (the server under test needs them to answer).
func runClient(_ executable: String, _ arguments: [String], timeout: Duration = .seconds(60)) async throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    process.standardInput = FileHandle.nullDevice
    let output = Pipe()
    process.standardOutput = output
    process.standardError = output
    let collected = NIOLockedValueBox(Data())
    output.fileHandleForReading.readabilityHandler = { handle in
        let data = handle.availableData
        collected.withLockedValue { $0.append(data) }
    }
    try process.run()
    let deadline = ContinuousClock.now + timeout
    while process.isRunning, ContinuousClock.now < deadline {
        try await Task.sleep(for: .milliseconds(10))
    }
    if process.isRunning {
        process.terminate()
    }
    // Exited (or terminated): the rest of the output is already in the pipe.
    while process.isRunning {
        try await Task.sleep(for: .milliseconds(10))
    }
    output.fileHandleForReading.readabilityHandler = nil
    let rest = (try? output.fileHandleForReading.readToEnd()) ?? nil
    let text = collected.withLockedValue { data in
        if let rest { data.append(rest) }
        return String(decoding: data, as: UTF8.self)
    }
    if ContinuousClock.now >= deadline {
        throw RESPTestFailure("\(executable) \(arguments.joined(separator: " ")) did not finish within \(timeout): \(text)")
    }
    return (process.terminationStatus, text)
}

/// The path of a tool when it is installed (`scripts/setup.sh` installs them).
func installed(_ path: String) -> Bool {
    FileManager.default.isExecutableFile(atPath: path)
}

/// Whether the system python has redis-py (Debian's python3-redis).
let hasRedisPy: Bool = {
    guard installed("/usr/bin/python3") else { return false }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
    process.arguments = ["-c", "import redis"]
    process.standardError = FileHandle.nullDevice
    guard (try? process.run()) != nil else { return false }
    process.waitUntilExit()
    return process.terminationStatus == 0
}()
