import ConcordRedis
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A throwaway `redis-server` on a free 127.0.0.1 port, without persistence, for `concord cluster`,
/// the chaos harness, benchmarks and tests.
///
/// Each instance owns its process and temp dir. The process is killed by `stop()`, by `deinit`,
/// and at process exit, so a failing test never leaves one behind; prefer `withRedisServer {}`.
/// Safe to use from tests running in parallel: ports come from the kernel and a start that
/// lost a port race is retried on another port.
public final class RedisServer: Sendable {
    /// How to start the server.
    public struct Options: Sendable {
        /// An ACL user created at start with full access.
        public struct User: Sendable {
            public var name: String
            public var password: String
            public init(name: String, password: String) {
                self.name = name
                self.password = password
            }
        }

        /// Password of the default user (`requirepass`); nil leaves it open.
        public var requirePassword: String?
        public var users: [User]
        /// Extra config-file lines, e.g. `"maxmemory 10mb"`.
        public var extraConfig: [String]
        public var executable: String
        public var startTimeout: Duration

        public init(
            requirePassword: String? = nil,
            users: [User] = [],
            extraConfig: [String] = [],
            executable: String = "redis-server",
            startTimeout: Duration = .seconds(10)
        ) {
            self.requirePassword = requirePassword
            self.users = users
            self.extraConfig = extraConfig
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
    /// The temp dir holding the config file and the server log.
    public let directory: URL
    private let state: Mutex<State>

    public var host: String { "127.0.0.1" }
    /// `redis://127.0.0.1:PORT` (no credentials).
    public var url: String { "redis://127.0.0.1:\(port)" }
    /// The server process id, nil while killed.
    public var processIdentifier: Int32? { state.withLock { $0.process?.processIdentifier } }

    /// A client configuration for this server, authenticated as the default user when it has a password.
    public func configuration() -> RedisConfiguration {
        RedisConfiguration(host: host, port: port, password: options.requirePassword)
    }

    private init(port: Int, options: Options, directory: URL, process: ChildProcess) {
        self.port = port
        self.options = options
        self.directory = directory
        self.state = Mutex(State(process: process))
    }

    deinit {
        stop()
    }

    // MARK: Starting

    /// Starts a server on a free port and returns once it answers.
    public static func start(_ options: Options = .init()) async throws -> RedisServer {
        let executable = try resolveExecutable(options.executable)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("concord-redis-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        ExitRegistry.shared.add(directory: directory)
        var lastError: (any Error)?
        for _ in 0..<8 {
            do {
                let port = try FreePort.next()
                let process = try await launch(executable: executable, port: port, options: options, directory: directory)
                return RedisServer(port: port, options: options, directory: directory, process: process)
            } catch {
                lastError = error
            }
        }
        try? FileManager.default.removeItem(at: directory)
        ExitRegistry.shared.remove(directory: directory)
        throw RedisServerError("could not start redis-server: \(lastError.map { "\($0)" } ?? "unknown error")")
    }

    private static func launch(executable: String, port: Int, options: Options, directory: URL) async throws -> ChildProcess {
        let configPath = directory.appendingPathComponent("redis-\(port).conf")
        try config(port: port, options: options, directory: directory).write(to: configPath, atomically: true, encoding: .utf8)

        // Persistence off on the command line too, whatever the config file says.
        let process = try ChildProcess.launch(
            name: "redis-\(port)",
            executable: executable,
            arguments: [configPath.path, "--save", "", "--appendonly", "no"]
        )

        do {
            let deadline = ContinuousClock.now.advanced(by: options.startTimeout)
            while ContinuousClock.now < deadline {
                guard process.isRunning else {
                    throw RedisServerError("redis-server exited during start on port \(port) (port taken?)")
                }
                // The pid check tells our server from another test's that won the same port.
                if let pid = probe(port: port, password: options.requirePassword), pid == process.processIdentifier {
                    return process
                }
                try await Task.sleep(for: .milliseconds(10))
            }
            throw RedisServerError("redis-server on port \(port) did not answer within \(options.startTimeout)")
        } catch {
            terminate(process)
            throw error
        }
    }

    private static func config(port: Int, options: Options, directory: URL) -> String {
        var lines = [
            "bind 127.0.0.1",
            "port \(port)",
            "daemonize no",
            "save \"\"",
            "appendonly no",
            "dir \(quoted(directory.path))",
            "logfile \(quoted(directory.appendingPathComponent("redis-\(port).log").path))",
        ]
        if let password = options.requirePassword {
            lines.append("requirepass \(quoted(password))")
        }
        for user in options.users {
            lines.append("user \(user.name) on \(quoted(">" + user.password)) ~* &* +@all")
        }
        lines.append(contentsOf: options.extraConfig)
        return lines.joined(separator: "\n") + "\n"
    }

    private static func quoted(_ text: String) -> String {
        "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }

    // MARK: Faults

    /// SIGKILL: the server dies at once, the port closes, the dataset is gone.
    public func kill() {
        let process = state.withLock { state -> ChildProcess? in
            defer { state.process = nil }
            return state.process
        }
        if let process { Self.terminate(process) }
    }

    /// SIGSTOP: the server keeps its sockets but answers nothing (a hung server).
    public func pause() {
        if let pid = processIdentifier { _ = Glibc.kill(pid, SIGSTOP) }
    }

    /// SIGCONT after `pause()`.
    public func resume() {
        if let pid = processIdentifier { _ = Glibc.kill(pid, SIGCONT) }
    }

    /// Kills the server if running and starts a new process on the same port with an empty dataset.
    public func restart() async throws {
        kill()
        let executable = try Self.resolveExecutable(options.executable)
        var lastError: (any Error)?
        // The port may linger for a moment after the kill; retry briefly.
        for _ in 0..<20 {
            do {
                let process = try await Self.launch(executable: executable, port: port, options: options, directory: directory)
                let stale = state.withLock { state -> ChildProcess? in
                    if state.stopped { return process }
                    state.process = process
                    return nil
                }
                if let stale {
                    Self.terminate(stale)
                    throw StoppedDuringRestart()
                }
                return
            } catch let error as StoppedDuringRestart {
                throw RedisServerError("server was stopped during restart: \(error)")
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                lastError = error
                try await Task.sleep(for: .milliseconds(50))
            }
        }
        throw RedisServerError("could not restart redis-server on port \(port): \(lastError.map { "\($0)" } ?? "")")
    }

    private struct StoppedDuringRestart: Error {}

    /// Kills the server and removes its temp dir. Idempotent; the instance cannot be restarted after.
    public func stop() {
        let process = state.withLock { state -> ChildProcess? in
            state.stopped = true
            defer { state.process = nil }
            return state.process
        }
        if let process { Self.terminate(process) }
        try? FileManager.default.removeItem(at: directory)
        ExitRegistry.shared.remove(directory: directory)
    }

    /// SIGKILL (which also ends a SIGSTOPped process) and wait for the reaper, so the port is
    /// closed when this returns. Synchronous, because `stop()` runs from `deinit` too.
    private static func terminate(_ process: ChildProcess) {
        process.signal(SIGKILL)
        _ = process.waitForExitBlocking(timeout: .seconds(10))
    }

    // MARK: Helpers

    private static func resolveExecutable(_ name: String) throws -> String {
        guard let path = ExecutableSearch.locate(name) else {
            throw RedisServerError("\(name) not found in PATH (install redis-server)")
        }
        return path
    }

    /// Sends PING and `INFO server` on a short-lived blocking socket; returns the server's pid once it answers PONG.
    public static func probe(port: Int, password: String?) -> Int32? {
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

        var request = ""
        if let password {
            request += command(["AUTH", password])
        }
        request += command(["INFO", "server"]) + command(["PING"])
        let bytes = Array(request.utf8)
        let sent = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        guard sent == bytes.count else { return nil }

        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16_384)
        let pong = Array("+PONG\r\n".utf8)
        while received.count < 1_000_000 {
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { return nil }
            received.append(contentsOf: chunk[0..<count])
            if received.count >= pong.count, Array(received.suffix(pong.count)) == pong { break }
        }
        let text = String(decoding: received, as: UTF8.self)
        guard let line = text.split(separator: "\r\n").first(where: { $0.hasPrefix("process_id:") }) else { return nil }
        return Int32(line.dropFirst("process_id:".count))
    }

    private static func command(_ arguments: [String]) -> String {
        "*\(arguments.count)\r\n" + arguments.map { "$\($0.utf8.count)\r\n\($0)\r\n" }.joined()
    }
}

/// Runs `body` with a fresh server that is stopped afterwards, whether `body` returns or throws.
public func withRedisServer<T>(
    _ options: RedisServer.Options = .init(),
    _ body: (RedisServer) async throws -> T
) async throws -> T {
    let server = try await RedisServer.start(options)
    do {
        let result = try await body(server)
        server.stop()
        return result
    } catch {
        server.stop()
        throw error
    }
}
