import ConcordTesting
import Testing

@testable import Concord

/// `HybridCache.writeMemoryHit(utf8:_:)`, the RESP front end's GET: a hit's bytes go to the
/// writer where they lie, and everything else is what `tryGetFromMemory(utf8:)` gives.
@Suite("HybridCache: L1 hits written in place")
struct MemoryBytesHitTests {
    /// Runs `writeMemoryHit` for `key` and returns what it wrote (nil when `write` was not
    /// called) and whether a read is left to finish.
    static func written(_ cache: HybridCache, _ key: [UInt8]) throws -> (bytes: [UInt8]?, pending: PendingRead?) {
        var bytes: [UInt8]?
        let pending = try key.withUnsafeBytes { key in
            try cache.writeMemoryHit(utf8: key) { stored in
                #expect(bytes == nil, "written twice")
                bytes = Array(stored)
            }
        }
        return (bytes, pending)
    }

    @Test(arguments: ["k", "key:__rand_int__", String(repeating: "long-key/", count: 20), "caf\u{E9}"])
    func aFreshByteValueIsWrittenCountedAndAnnouncedAsAHit(key: String) async throws {
        let cache = try makeCache(clock: ManualClock())
        let value = Array("value of \(key)".utf8)
        try await cache.set(key, value)
        var events = cache.events().makeAsyncIterator()
        let read = try Self.written(cache, Array(key.utf8))
        #expect(read.bytes == value)
        #expect(read.pending == nil)
        #expect(cache.statistics.memory.hits == 1)
        #expect(await events.next() == .hit(key: key, source: .memory, stale: false))
    }

    @Test func anEmptyValueIsWrittenAsNoBytes() async throws {
        let cache = try makeCache(clock: ManualClock())
        try await cache.set("empty", [UInt8]())
        let read = try Self.written(cache, Array("empty".utf8))
        #expect(read.bytes == [])
        #expect(read.pending == nil)
    }

    @Test func aMissWritesNothingAndLeavesTheReadToFinish() async throws {
        let store = InMemoryCacheStore()
        let cache = try makeCache(clock: ManualClock(), store: store)
        let read = try Self.written(cache, Array("absent".utf8))
        #expect(read.bytes == nil)
        let pending = try #require(read.pending)
        #expect(cache.statistics.memory.misses == 1)
        #expect(try await cache.getResult("absent", as: [UInt8].self, continuing: pending) == nil)
    }

    @Test func anExpiredEntryWritesNothingAndIsHandedOn() async throws {
        let clock = ManualClock()
        let cache = try makeCache(clock: clock)
        try await cache.set("k", Array("v".utf8), options: CacheEntryOptions(duration: .seconds(10)))
        clock.advance(by: .seconds(11))
        let read = try Self.written(cache, Array("k".utf8))
        #expect(read.bytes == nil)
        #expect(read.pending != nil)
        #expect(cache.statistics.memory.hits == 0)
    }

    @Test func aValueOfAnotherTypeThrowsTheTypeMismatchAndWritesNothing() async throws {
        let cache = try makeCache(clock: ManualClock())
        try await cache.set("n", 42)
        var wrote = false
        let error = #expect(throws: CacheError.self) {
            _ = try Array("n".utf8).withUnsafeBytes { key in try cache.writeMemoryHit(utf8: key) { _ in wrote = true } }
        }
        #expect(error?.code == .typeMismatch)
        #expect(!wrote)
    }

    @Test(arguments: [[0xFF], [], Array("e\u{301}".utf8)] as [[UInt8]])
    func aKeyTheCacheRefusesThrowsAndWritesNothing(key: [UInt8]) async throws {
        let cache = try makeCache(clock: ManualClock())
        var wrote = false
        let error = #expect(throws: CacheError.self) {
            _ = try key.withUnsafeBytes { key in try cache.writeMemoryHit(utf8: key) { _ in wrote = true } }
        }
        #expect(error?.code == .invalidKey)
        #expect(!wrote)
    }
}
