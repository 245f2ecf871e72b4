import Concord
import ConcordTesting
import Logging
import ServiceLifecycle
import Testing

// The library example of README.md, compiled and run as a test so it cannot rot.
// Keep the two in step: the README shows the body of `readmeExample`.

struct Product: Codable, Sendable, Equatable {
    var id: Int
    var name: String
}

/// Stands in for the service's database in the README example.
struct ProductDatabase: Sendable {
    func load(id: Int) async throws -> Product { Product(id: id, name: "lamp") }
}

func readmeExample(distributed: (any DistributedCache)?, backplane: (any Backplane)?) async throws -> Product {
    let db = ProductDatabase()

    var configuration = HybridCacheConfiguration(cacheName: "products")
    configuration.defaultEntryOptions.duration = .seconds(30)
    configuration.defaultEntryOptions.isFailSafeEnabled = true      // serve the last value if the DB fails
    configuration.defaultEntryOptions.factorySoftTimeout = .milliseconds(100)
    let cache = try HybridCache(configuration: configuration, distributed: distributed, backplane: backplane)
    let group = ServiceGroup(services: [cache], logger: Logger(label: "readme"))
    return try await withThrowingTaskGroup(of: Void.self) { tasks in
        tasks.addTask { try await group.run() }

        // Run `cache` in your ServiceGroup next to the HTTP server, then wait until it is connected.
        // Without run(), calls that need Redis throw CacheError(.notRunning): nothing is written.
        try await cache.ready(timeout: .seconds(10))
        let product = try await cache.getOrSet("product:42") { try await db.load(id: 42) }

        // A write on any node expires the copies on every other node.
        try await cache.set("product:42", Product(id: 42, name: "desk lamp"), tags: ["catalog"])
        try await cache.removeByTag("catalog")

        await group.triggerGracefulShutdown()
        return product
    }
}

@Suite("README example")
struct ReadmeExampleTests {
    @Test func theReadmeExampleRuns() async throws {
        let store = InMemoryCacheStore()
        let product = try await readmeExample(distributed: InMemoryDistributedCache(store: store), backplane: InMemoryBackplane(store: store))
        #expect(product == Product(id: 42, name: "lamp"))
    }
}
