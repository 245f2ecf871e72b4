import ConcordProcess
import ConcordTesting
import Logging

@testable import ConcordMemcached

let testLogger: Logger = {
    var logger = Logger(label: "concord.memcached.tests")
    logger.logLevel = .critical
    return logger
}()

/// A configuration for `servers` with short backoff, so fault tests finish quickly, and request
/// timeouts long enough for a loaded CI machine (tests about timeouts set their own).
func fastConfiguration(_ servers: [MemcachedServer]) -> MemcachedConfiguration {
    MemcachedConfiguration(
        servers: servers.map { MemcachedConfiguration.Server(host: $0.host, port: $0.port) },
        connectTimeout: .seconds(2),
        requestTimeout: .seconds(5),
        reconnect: .init(backoffBase: .milliseconds(20), backoffCap: .milliseconds(200))
    )
}

/// Runs `client.run()` beside `body` and cancels it afterwards.
func withRunningClient<T: Sendable>(
    _ configuration: MemcachedConfiguration,
    waitForConnection: Bool = true,
    _ body: @Sendable (MemcachedClient) async throws -> T
) async throws -> T {
    let client = MemcachedClient(configuration: configuration, logger: testLogger)
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await client.run() }
        if waitForConnection {
            try await client.waitUntilConnected(timeout: TestBounds.connect)
        }
        let result = try await body(client)
        group.cancelAll()
        return result
    }
}

/// Starts `count` memcached servers, runs `body`, and stops them.
func withMemcachedServers<T>(_ count: Int, options: MemcachedServer.Options = .init(), _ body: ([MemcachedServer]) async throws -> T) async throws -> T {
    var servers: [MemcachedServer] = []
    defer { for server in servers { server.stop() } }
    for _ in 0..<count { servers.append(try await MemcachedServer.start(options)) }
    return try await body(servers)
}

/// The `MemcachedError` that `body` throws, nil when it does not throw.
func memcachedError(_ body: () async throws -> Void) async -> MemcachedError? {
    do {
        try await body()
        return nil
    } catch let error as MemcachedError {
        return error
    } catch {
        return MemcachedError(.client, "unexpected error \(error)")
    }
}

func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }
