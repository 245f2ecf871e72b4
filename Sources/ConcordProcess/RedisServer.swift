import Concord
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

        /// A TLS listener next to the plaintext port (which stays, for probes and fault control).
        public struct TLS: Sendable {
            public var certificateFile: String
            public var keyFile: String
            /// The CAs the server trusts for client certificates (Redis requires one even without mutual TLS).
            public var caFile: String
            /// Mutual TLS: refuse clients that present no certificate signed by `caFile`.
            public var requireClientCertificates: Bool

            public init(certificateFile: String, keyFile: String, caFile: String, requireClientCertificates: Bool = false) {
                self.certificateFile = certificateFile
                self.keyFile = keyFile
                self.caFile = caFile
                self.requireClientCertificates = requireClientCertificates
            }
        }

        /// Runs the process as a Sentinel (`redis-server --sentinel`) that monitors one master.
        public struct Sentinel: Sendable {
            public var masterName: String
            public var masterHost: String
            public var masterPort: Int
            /// Sentinels that must agree the master is down before a failover.
            public var quorum: Int
            /// How long the master may not answer before this Sentinel thinks it down.
            public var downAfter: Duration
            public var failoverTimeout: Duration
            /// The master's (and replicas') `requirepass`, for `sentinel auth-pass`.
            public var masterPassword: String?

            public init(
                masterName: String = "mymaster",
                masterHost: String = "127.0.0.1",
                masterPort: Int,
                quorum: Int = 2,
                downAfter: Duration = .milliseconds(1000),
                failoverTimeout: Duration = .seconds(5),
                masterPassword: String? = nil
            ) {
                self.masterName = masterName
                self.masterHost = masterHost
                self.masterPort = masterPort
                self.quorum = quorum
                self.downAfter = downAfter
                self.failoverTimeout = failoverTimeout
                self.masterPassword = masterPassword
            }
        }

        /// Password of the default user (`requirepass`); nil leaves it open.
        public var requirePassword: String?
        public var users: [User]
        /// Extra config-file lines, e.g. `"maxmemory 10mb"`.
        public var extraConfig: [String]
        public var executable: String
        public var startTimeout: Duration
        /// nil: plaintext only; set: also listens with TLS on `tlsPort`.
        public var tls: TLS?
        /// Set: the process is a Sentinel, not a data server.
        public var sentinel: Sentinel?

        public init(
            requirePassword: String? = nil,
            users: [User] = [],
            extraConfig: [String] = [],
            executable: String = "redis-server",
            startTimeout: Duration = .seconds(10),
            tls: TLS? = nil,
            sentinel: Sentinel? = nil
        ) {
            self.requirePassword = requirePassword
            self.users = users
            self.extraConfig = extraConfig
            self.tls = tls
            self.sentinel = sentinel
            self.executable = executable
            self.startTimeout = startTimeout
        }
    }

    private static let kind = ServerProcess.Kind(name: "redis-server", error: { RedisServerError($0) })

    public let port: Int
    /// The TLS listener's port when `options.tls` is set.
    public let tlsPort: Int?
    public let options: Options
    /// The temp dir holding the config file and the server log.
    public let directory: URL
    private let process: ServerProcess

    public var host: String { "127.0.0.1" }
    /// `redis://127.0.0.1:PORT` (no credentials).
    public var url: String { "redis://127.0.0.1:\(port)" }
    /// The server process id, nil while killed.
    public var processIdentifier: Int32? { process.processIdentifier }

    /// A client configuration for this server, authenticated as the default user when it has a password.
    public func configuration() -> RedisConfiguration {
        RedisConfiguration(host: host, port: port, password: options.requirePassword)
    }

    /// `rediss://127.0.0.1:TLSPORT`, when the server listens with TLS.
    public var tlsURL: String? { tlsPort.map { "rediss://127.0.0.1:\($0)" } }

    /// A client configuration for the TLS listener with the client-side settings `tls`.
    public func tlsConfiguration(_ tls: RedisConfiguration.TLS) -> RedisConfiguration {
        RedisConfiguration(host: host, port: tlsPort ?? port, password: options.requirePassword, tls: tls)
    }

    private init(port: Int, tlsPort: Int?, options: Options, directory: URL, process: ChildProcess) {
        self.port = port
        self.tlsPort = tlsPort
        self.options = options
        self.directory = directory
        self.process = ServerProcess(kind: Self.kind, process: process)
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
        do {
            return try await ServerProcess.onFreePort(kind) { port in
                let tlsPort = try options.tls.map { _ in try FreePort.next() }
                let process = try await launch(executable: executable, port: port, tlsPort: tlsPort, options: options, directory: directory)
                return RedisServer(port: port, tlsPort: tlsPort, options: options, directory: directory, process: process)
            }
        } catch {
            try? FileManager.default.removeItem(at: directory)
            ExitRegistry.shared.remove(directory: directory)
            throw error
        }
    }

    private static func launch(executable: String, port: Int, tlsPort: Int?, options: Options, directory: URL) async throws -> ChildProcess {
        let configPath = directory.appendingPathComponent("redis-\(port).conf")
        try config(port: port, tlsPort: tlsPort, options: options, directory: directory)
            .write(to: configPath, atomically: true, encoding: .utf8)
        return try await ServerProcess.launch(
            kind, port: port, timeout: options.startTimeout, probe: { probe(port: port, password: options.requirePassword) }
        ) {
            // Persistence off on the command line too, whatever the config file says.
            try ChildProcess.launch(
                name: options.sentinel == nil ? "redis-\(port)" : "sentinel-\(port)",
                executable: executable,
                arguments: [configPath.path] + (options.sentinel == nil ? [] : ["--sentinel"]) + ["--save", "", "--appendonly", "no"]
            )
        }
    }

    private static func config(port: Int, tlsPort: Int?, options: Options, directory: URL) -> String {
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
        if let tls = options.tls, let tlsPort {
            lines += [
                "tls-port \(tlsPort)",
                "tls-cert-file \(quoted(tls.certificateFile))",
                "tls-key-file \(quoted(tls.keyFile))",
                "tls-ca-cert-file \(quoted(tls.caFile))",
                "tls-auth-clients \(tls.requireClientCertificates ? "yes" : "no")",
                // Replication and Sentinel's links to the servers use TLS as well.
                "tls-replication yes",
            ]
        }
        for user in options.users {
            lines.append("user \(user.name) on \(quoted(">" + user.password)) ~* &* +@all")
        }
        if let sentinel = options.sentinel {
            let name = sentinel.masterName
            lines += [
                "sentinel monitor \(name) \(sentinel.masterHost) \(sentinel.masterPort) \(sentinel.quorum)",
                "sentinel down-after-milliseconds \(name) \(sentinel.downAfter.wholeMilliseconds)",
                "sentinel failover-timeout \(name) \(sentinel.failoverTimeout.wholeMilliseconds)",
                "sentinel parallel-syncs \(name) 1",
            ]
            if let password = sentinel.masterPassword {
                lines.append("sentinel auth-pass \(name) \(quoted(password))")
            }
        }
        lines.append(contentsOf: options.extraConfig)
        return lines.joined(separator: "\n") + "\n"
    }

    private static func quoted(_ text: String) -> String {
        "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }

    // MARK: Faults

    /// SIGKILL: the server dies at once, the port closes, the dataset is gone.
    public func kill() { process.kill() }

    /// SIGSTOP: the server keeps its sockets but answers nothing (a hung server).
    public func pause() { process.pause() }

    /// SIGCONT after `pause()`.
    public func resume() { process.resume() }

    /// Kills the server if running and starts a new process on the same port with an empty dataset.
    /// With `extraConfig`, those lines are added to the options' own (e.g. `replicaof HOST PORT`,
    /// to bring a killed master back as a replica).
    public func restart(extraConfig: [String] = []) async throws {
        var options = options
        options.extraConfig += extraConfig
        let executable = try Self.resolveExecutable(options.executable)
        try await process.restart(port: port) {
            try await Self.launch(executable: executable, port: port, tlsPort: tlsPort, options: options, directory: directory)
        }
    }

    /// Kills the server and removes its temp dir. Idempotent; the instance cannot be restarted after.
    public func stop() {
        process.stop()
        try? FileManager.default.removeItem(at: directory)
        ExitRegistry.shared.remove(directory: directory)
    }

    // MARK: Helpers

    private static func resolveExecutable(_ name: String) throws -> String {
        try ServerProcess.locate(kind, name, hint: "install redis-server")
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

extension Duration {
    /// Whole milliseconds, for config files that take them.
    fileprivate var wholeMilliseconds: Int64 {
        components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
    }
}
