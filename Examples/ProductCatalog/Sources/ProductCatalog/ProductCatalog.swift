import Concord
import ConcordRedis
import Logging
import ServiceLifecycle
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// The README's Library example as a program, run by scripts/test.sh as separate processes
// against one redis-server:
//   ProductCatalog set URL NAME          write product 42's name, then stop
//   ProductCatalog follow URL FIRST NEXT read product 42 (expect FIRST, from Redis), print
//                                        "following", then wait until NEXT reaches this process
//   ProductCatalog set-without-run URL   a set without run(): must fail with notRunning
//   ProductCatalog absent URL            product 42 must not be in Redis

struct Product: Codable, Sendable, Equatable {
    var id: Int
    var name: String
}

/// Stands in for the service's database.
struct ProductDatabase: Sendable {
    func load(id: Int) async throws -> Product { Product(id: id, name: "from the database") }
}

/// Prints a line at once: another process waits for it on a pipe.
func say(_ line: String) {
    print(line)
    fflush(nil)
}

struct UsageError: Error, CustomStringConvertible {
    var description: String
}

@main
struct ProductCatalog {
    static func main() async throws {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .warning
            return handler
        }

        let arguments = Array(CommandLine.arguments.dropFirst())
        guard arguments.count >= 2 else {
            throw UsageError(description: "usage: ProductCatalog set|follow|set-without-run|absent REDIS-URL [NAME...]")
        }
        let (command, url) = (arguments[0], arguments[1])

        var configuration = HybridCacheConfiguration(cacheName: "products")
        configuration.defaultEntryOptions.duration = .seconds(30)
        configuration.defaultEntryOptions.isFailSafeEnabled = true      // serve the last value if the DB fails
        configuration.defaultEntryOptions.factorySoftTimeout = .milliseconds(100)
        let cache = try HybridCache.redis(url: url, configuration: configuration, logger: Logger(label: "products"))
        let db = ProductDatabase()

        switch command {
        case "set":
            guard arguments.count == 3 else { throw UsageError(description: "set needs a name") }
            try await withRunningCache(cache) {
                try await cache.set("product:42", Product(id: 42, name: arguments[2]), tags: ["catalog"])
            }
            say("set product:42 to \(arguments[2])")

        case "follow":
            guard arguments.count == 4 else { throw UsageError(description: "follow needs the first and the next name") }
            let (first, next) = (arguments[2], arguments[3])
            try await withRunningCache(cache) {
                let product = try await cache.getOrSet("product:42") { try await db.load(id: 42) }
                guard product.name == first else {
                    throw UsageError(description: "read '\(product.name)', expected '\(first)' written by the other process")
                }
                say("following: read \(product.name)")
                // Bounded: at most 600 reads, 50 ms apart.
                for _ in 0..<600 {
                    if let current = try await cache.get("product:42", as: Product.self), current.name == next {
                        say("saw \(next) written by the other process")
                        return
                    }
                    try await Task.sleep(for: .milliseconds(50))
                }
                throw UsageError(description: "'\(next)' never reached this process")
            }

        case "set-without-run":
            do {
                try await cache.set("product:42", Product(id: 42, name: "never written"))
                throw UsageError(description: "set without run() returned success")
            } catch let error as CacheError where error.code == .notRunning {
                say("refused without run(): \(error.code)")
            }

        case "absent":
            try await withRunningCache(cache) {
                if let found = try await cache.get("product:42", as: Product.self) {
                    throw UsageError(description: "product:42 is in Redis: \(found)")
                }
            }
            say("product:42 is absent")

        default:
            throw UsageError(description: "unknown command '\(command)'")
        }
    }

    /// Runs `body` with the cache running in a ServiceGroup and ready, then shuts down gracefully.
    static func withRunningCache(_ cache: HybridCache, _ body: @Sendable () async throws -> Void) async throws {
        let group = ServiceGroup(services: [cache], logger: Logger(label: "products"))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            try await cache.ready(timeout: .seconds(10))
            do {
                try await body()
            } catch {
                await group.triggerGracefulShutdown()
                throw error
            }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }
}
