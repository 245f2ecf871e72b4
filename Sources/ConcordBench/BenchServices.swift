import Concord
import ConcordProcess

/// Runs background services (`run()` of clients, subscribers, caches) around a body and cancels
/// them when it ends, whether it returns or throws.
enum BenchServices {
    static func withRunning<T: Sendable>(
        _ services: [@Sendable () async throws -> Void],
        _ body: () async throws -> T
    ) async throws -> T {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for service in services {
                group.addTask {
                    // A service ending with an error is seen by the body as a failed operation;
                    // it must not tear down the group while the body still measures.
                    try? await service()
                }
            }
            do {
                let result = try await body()
                group.cancelAll()
                return result
            } catch {
                group.cancelAll()
                throw error
            }
        }
    }

    /// Starts a throwaway redis-server for a suite and stops it afterwards in every path.
    static func withServer<T: Sendable>(_ options: RedisServer.Options = .init(), _ body: (RedisServer) async throws -> T) async throws -> T {
        let server: RedisServer
        do {
            server = try await RedisServer.start(options)
        } catch {
            throw BenchError("cannot start redis-server (run scripts/setup.sh): \(error)")
        }
        defer { server.stop() }
        return try await body(server)
    }

    /// Polls `condition` every `interval` until it holds or `timeout` passes.
    static func waitUntil(timeout: Duration, interval: Duration = .milliseconds(5), _ condition: () async throws -> Bool) async throws -> Bool {
        struct NotYet: Error {}
        do {
            try await Retry.run(backoff: .fixed(interval), limit: .duration(timeout), isRetryable: { $0 is NotYet }) { _ in
                guard try await condition() else { throw NotYet() }
            }
            return true
        } catch is NotYet {
            return false
        }
    }
}
