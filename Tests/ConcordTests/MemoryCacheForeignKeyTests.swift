import Testing

@testable import Concord

/// `MemoryCache.get(hash:where:now:project:)`, the lookup by a key held in another form (the
/// RESP front end's key bytes), and the byte-key reads of `HybridCache` built on it.
@Suite("MemoryCache: lookup by hash and predicate")
struct MemoryCacheForeignKeyTests {
    let now = CacheInstant.zero

    @Test func findsWhatTheKeyedGetFindsAndCountsTheSame() {
        let cache = MemoryCache<String, Int>()
        for index in 0..<200 { cache.set("key:\(index)", MemoryCacheItem(value: index), now: now) }
        for index in 0..<200 {
            let key = "key:\(index)"
            #expect(cache.get(hash: key.hashValue, where: { $0 == key }, now: now) { $0 } == index)
        }
        let absent = "key:absent"
        #expect(cache.get(hash: absent.hashValue, where: { $0 == absent }, now: now) { $0 } == nil)
        // A predicate that refuses the key finds nothing, whatever the hash.
        #expect(cache.get(hash: "key:7".hashValue, where: { _ in false }, now: now) { $0 } == nil)
        #expect(cache.statistics.hits == 200)
        #expect(cache.statistics.misses == 2)
    }

    @Test func anExpiredEntryIsRemovedAndReportedAsByTheKeyedGet() {
        let recorder = MemoryCacheRemovalRecorder<String, Int>()
        let cache = MemoryCache<String, Int>(onRemoval: recorder.listener)
        cache.set("a", MemoryCacheItem(value: 1, expiresAt: now + .seconds(10)), now: now)
        #expect(cache.get(hash: "a".hashValue, where: { $0 == "a" }, now: now + .seconds(10)) { $0 } == nil)
        #expect(recorder.causes() == [.expired])
        #expect(cache.count == 0)
    }

    @Test func keyBytesHashAsTheStringsTheySpell() {
        #expect(HybridCache.hashesKeyBytesAsStrings)
        for key in ["k", "key:000000000001", "a-much-longer-key-than-fits-inline:0123456789", "tab\tand\u{0}nul"] {
            let bytes = Array(key.utf8)
            #expect(bytes.withUnsafeBytes { HybridCache.stringHash(utf8: $0) } == key.hashValue)
            #expect(bytes.withUnsafeBytes { HybridCache.utf8(of: key, equals: $0) })
            #expect(!Array("x\(key)".utf8).withUnsafeBytes { HybridCache.utf8(of: key, equals: $0) })
        }
    }

    @Test func byteKeyReadsServeCountAndMissAsStringReads() async throws {
        let cache = try HybridCache(configuration: HybridCacheConfiguration(cacheName: "test", nodeID: "n1"), logger: quietLogger)
        try await cache.set("k", Array("v".utf8))
        guard case .hit(let hit) = try Array("k".utf8).withUnsafeBytes({ try cache.tryGetFromMemory(utf8: $0) }) else {
            Issue.record("no hit")
            return
        }
        #expect(hit.value == Array("v".utf8))
        guard case .pending = try Array("absent".utf8).withUnsafeBytes({ try cache.tryGetFromMemory(utf8: $0) }) else {
            Issue.record("a hit for an absent key")
            return
        }
        #expect(cache.statistics.memory.hits == 1)
        #expect(cache.statistics.memory.misses == 1)
        // Keys the byte path does not take go through the String path, with its errors.
        #expect(!Array("caf\u{E9}".utf8).withUnsafeBytes { cache.readsKeyBytes($0) })
        #expect(!Array("".utf8).withUnsafeBytes { cache.readsKeyBytes($0) })
        #expect(throws: CacheError.self) { try [UInt8]([0xFF]).withUnsafeBytes { try cache.tryGetFromMemory(utf8: $0) } }
        #expect(throws: CacheError.self) { try [UInt8]().withUnsafeBytes { try cache.tryGetFromMemory(utf8: $0) } }
    }
}
