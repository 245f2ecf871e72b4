import Concord
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A throwaway `memcached` on a free 127.0.0.1 port, for tests, chaos runs and benchmarks; the
/// Memcached counterpart of `RedisServer`, started the same way and with the same faults (kill,
/// pause, restart).
///
/// The process is killed by `stop()`, by `deinit` and at process exit (`ExitRegistry`), so a
/// failing test never leaves one behind; prefer `withMemcachedServer {}`. A start that lost a port race is retried
/// on another port.
public final class MemcachedServer: Sendable {
    /// How to start the server.
    public struct Options: Sendable {
        /// Memory for items, in MiB (`-m`).
        public var memoryMegabytes: Int
        /// The largest item, in bytes (`-I`); memcached's default is 1 MiB.
        public var itemSizeLimit: Int
        /// Extra command-line arguments.
        public var extraArguments: [String]
        public var executable: String
        public var startTimeout: Duration

        public init(
            memoryMegabytes: Int = 64,
            itemSizeLimit: Int = 1_048_576,
            extraArguments: [String] = [],
            executable: String = "memcached",
            startTimeout: Duration = .seconds(10)
        ) {
            self.memoryMegabytes = memoryMegabytes
            self.itemSizeLimit = itemSizeLimit
            self.extraArguments = extraArguments
            self.executable = executable
            self.startTimeout = startTimeout
        }
    }

    private struct State {
        var process: ChildProcess?
        var stopped = false
    }

    public let port: Int
    public let options: Options
    private let state: Mutex<State>

    public var host: String { "127.0.0.1" }
    /// `memcached://127.0.0.1:PORT`.
    public var url: String { "memcached://127.0.0.1:\(port)" }
    /// The server process id, nil while killed.
    public var processIdentifier: Int32? { state.withLock { $0.process?.processIdentifier } }

    private init(port: Int, options: Options, process: ChildProcess) {
        self.port = port
        self.options = options
        self.state = Mutex(State(process: process))
    }

    deinit { stop() }

    /// Starts a server on a free port and returns once it answers.
    public static func start(_ options: Options = .init()) async throws -> MemcachedServer {
        let executable = try resolveExecutable(options.executable)
        do {
            // A start that lost its port to another process is tried again on other ports.
            return try await Retry.run(backoff: .fixed(.zero), limit: .attempts(8)) { _ in
                let port = try FreePort.next()
                let process = try await launch(executable: executable, port: port, options: options)
                return MemcachedServer(port: port, options: options, process: process)
            }
        } catch {
            throw MemcachedServerError("could not start memcached: \(error)")
        }
    }

    /// Starts a server on `port` (for a restart on the same address); throws when it does not answer.
    private static func launch(executable: String, port: Int, options: Options) async throws -> ChildProcess {
        // memcached refuses to run as root without -u.
        let user = getuid() == 0 ? ["-u", "root"] : []
        let process = try ChildProcess.launch(
            name: "memcached-\(port)",
            executable: executable,
            arguments: [
                "-l", "127.0.0.1", "-p", "\(port)", "-U", "0", "-m", "\(options.memoryMegabytes)",
                "-I", "\(options.itemSizeLimit)", "-t", "2", "-c", "1024",
            ] + user + options.extraArguments
        )
        do {
            struct NotAnswering: Error {}
            do {
                try await Retry.run(
                    backoff: .fixed(.milliseconds(10)),
                    limit: .duration(options.startTimeout),
                    isRetryable: { $0 is NotAnswering }
                ) { _ in
                    guard process.isRunning else {
                        throw MemcachedServerError("memcached exited during start on port \(port) (port taken?)")
                    }
                    // The pid check tells our server from another test's that won the same port.
                    guard let pid = probe(port: port), pid == process.processIdentifier else { throw NotAnswering() }
                }
            } catch is NotAnswering {
                throw MemcachedServerError("memcached on port \(port) did not answer within \(options.startTimeout)")
            }
            return process
        } catch {
            terminate(process)
            throw error
        }
    }

    // MARK: Faults

    /// SIGKILL: the server dies at once, the port closes, every item is gone.
    public func kill() {
        let process = state.withLock { state -> ChildProcess? in
            defer { state.process = nil }
            return state.process
        }
        if let process { Self.terminate(process) }
    }

    /// SIGSTOP: the server keeps its sockets but answers nothing.
    public func pause() {
        if let pid = processIdentifier { _ = Glibc.kill(pid, SIGSTOP) }
    }

    /// SIGCONT after `pause()`.
    public func resume() {
        if let pid = processIdentifier { _ = Glibc.kill(pid, SIGCONT) }
    }

    /// Kills the server if running and starts a new, empty one on the same port.
    public func restart() async throws {
        kill()
        let executable = try Self.resolveExecutable(options.executable)
        struct StoppedDuringRestart: Error {}
        do {
            // The port may linger for a moment after the kill; retry briefly.
            try await Retry.run(
                backoff: .fixed(.milliseconds(50)),
                limit: .attempts(20),
                isRetryable: { !($0 is StoppedDuringRestart) }
            ) { _ in
                let process = try await Self.launch(executable: executable, port: port, options: options)
                let stale = state.withLock { state -> ChildProcess? in
                    if state.stopped { return process }
                    state.process = process
                    return nil
                }
                if let stale {
                    Self.terminate(stale)
                    throw StoppedDuringRestart()
                }
            }
        } catch is StoppedDuringRestart {
            throw MemcachedServerError("memcached was stopped during restart")
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            throw MemcachedServerError("could not restart memcached on port \(port): \(error)")
        }
    }

    /// Kills the server. Idempotent; the instance cannot be restarted after.
    public func stop() {
        let process = state.withLock { state -> ChildProcess? in
            state.stopped = true
            defer { state.process = nil }
            return state.process
        }
        if let process { Self.terminate(process) }
    }

    /// SIGKILL (which also ends a SIGSTOPped process) and wait for the reaper, so the port is
    /// closed when this returns. Synchronous, because `stop()` runs from `deinit` too.
    private static func terminate(_ process: ChildProcess) {
        process.signal(SIGKILL)
        _ = process.waitForExitBlocking(timeout: .seconds(10))
    }

    private static func resolveExecutable(_ name: String) throws -> String {
        guard let path = ExecutableSearch.locate(name) else {
            throw MemcachedServerError("\(name) not found in PATH (install memcached; scripts/setup.sh does)")
        }
        return path
    }

    /// Sends `stats` on a short-lived blocking socket; returns the server's pid once it answers.
    public static func probe(port: Int) -> Int32? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 1, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { return nil }
        let request = Array("stats\r\n".utf8)
        guard request.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, 0) }) == request.count else { return nil }
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16_384)
        let end = Array("END\r\n".utf8)
        while received.count < 1_000_000 {
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { return nil }
            received.append(contentsOf: chunk[0..<count])
            if received.count >= end.count, Array(received.suffix(end.count)) == end { break }
        }
        let text = String(decoding: received, as: UTF8.self)
        guard let line = text.split(separator: "\r\n").first(where: { $0.hasPrefix("STAT pid ") }) else { return nil }
        return Int32(line.dropFirst("STAT pid ".count))
    }
}

/// Runs `body` with a fresh memcached that is stopped afterwards, whether `body` returns or throws.
public func withMemcachedServer<T>(
    _ options: MemcachedServer.Options = .init(),
    _ body: (MemcachedServer) async throws -> T
) async throws -> T {
    let server = try await MemcachedServer.start(options)
    do {
        let result = try await body(server)
        server.stop()
        return result
    } catch {
        server.stop()
        throw error
    }
}
