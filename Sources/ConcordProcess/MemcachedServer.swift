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

    private static let kind = ServerProcess.Kind(name: "memcached", error: { MemcachedServerError($0) })

    public let port: Int
    public let options: Options
    private let process: ServerProcess

    public var host: String { "127.0.0.1" }
    /// `memcached://127.0.0.1:PORT`.
    public var url: String { "memcached://127.0.0.1:\(port)" }
    /// The server process id, nil while killed.
    public var processIdentifier: Int32? { process.processIdentifier }

    private init(port: Int, options: Options, process: ChildProcess) {
        self.port = port
        self.options = options
        self.process = ServerProcess(kind: Self.kind, process: process)
    }

    deinit { stop() }

    /// Starts a server on a free port and returns once it answers.
    public static func start(_ options: Options = .init()) async throws -> MemcachedServer {
        let executable = try resolveExecutable(options.executable)
        return try await ServerProcess.onFreePort(kind) { port in
            let process = try await launch(executable: executable, port: port, options: options)
            return MemcachedServer(port: port, options: options, process: process)
        }
    }

    /// Starts a server on `port` (for a restart on the same address); throws when it does not answer.
    private static func launch(executable: String, port: Int, options: Options) async throws -> ChildProcess {
        // memcached refuses to run as root without -u.
        let user = getuid() == 0 ? ["-u", "root"] : []
        return try await ServerProcess.launch(kind, port: port, timeout: options.startTimeout, probe: { probe(port: port) }) {
            try ChildProcess.launch(
                name: "memcached-\(port)",
                executable: executable,
                arguments: [
                    "-l", "127.0.0.1", "-p", "\(port)", "-U", "0", "-m", "\(options.memoryMegabytes)",
                    "-I", "\(options.itemSizeLimit)", "-t", "2", "-c", "1024",
                ] + user + options.extraArguments
            )
        }
    }

    // MARK: Faults

    /// SIGKILL: the server dies at once, the port closes, every item is gone.
    public func kill() { process.kill() }

    /// SIGSTOP: the server keeps its sockets but answers nothing.
    public func pause() { process.pause() }

    /// SIGCONT after `pause()`.
    public func resume() { process.resume() }

    /// Kills the server if running and starts a new, empty one on the same port.
    public func restart() async throws {
        let executable = try Self.resolveExecutable(options.executable)
        try await process.restart(port: port) { try await Self.launch(executable: executable, port: port, options: options) }
    }

    /// Kills the server. Idempotent; the instance cannot be restarted after.
    public func stop() { process.stop() }

    private static func resolveExecutable(_ name: String) throws -> String {
        try ServerProcess.locate(kind, name, hint: "install memcached; scripts/setup.sh does")
    }

    /// Sends `stats` on a short-lived blocking socket; returns the server's pid once it answers.
    public static func probe(port: Int) -> Int32? {
        guard let reply = LoopbackProbe.exchange(port: port, request: Array("stats\r\n".utf8), until: Array("END\r\n".utf8)) else { return nil }
        return LoopbackProbe.field("STAT pid ", in: reply)
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
