@testable import Concord
import Testing

/// L1's per-entry record: what it keeps, and that it stays the size the memory suite counts on.
@Suite("MemoryEntry")
struct MemoryEntryTests {
    private func entry(tags: [String], node: NodeName) -> MemoryEntry {
        MemoryEntry(
            value: 42, version: CacheVersion(milliseconds: 1_700_000_000_000, counter: 7, node: node.text), node: node,
            freshUntil: CacheInstant(nanoseconds: 10), eagerRefreshAt: CacheInstant(nanoseconds: .max), tags: tags,
            isExpired: false, isFailSafeValue: true, allowsFailSafe: true, failSafeCycles: 3, source: .distributed)
    }

    @Test("tags, version and flags read back as written, with and without tags")
    func roundTrip() {
        let node = NodeName("node-a")
        for tags in [[], ["user:1"], ["user:1", "team:9"]] {
            var entry = entry(tags: tags, node: node)
            #expect(entry.tags == tags)
            #expect(entry.version == CacheVersion(milliseconds: 1_700_000_000_000, counter: 7, node: "node-a"))
            #expect(entry.isFailSafeValue && entry.allowsFailSafe && !entry.isExpired)
            #expect(entry.source == .distributed && entry.failSafeCycles == 3)
            entry.rebase(to: CacheVersion(milliseconds: 1_700_000_000_001, counter: 0, node: "node-a"))
            #expect(entry.version == CacheVersion(milliseconds: 1_700_000_000_001, counter: 0, node: "node-a"))
            #expect(entry.tags == tags)
        }
    }

    @Test("an entry is 72 bytes, so a memory cache slot of a String key is 136")
    func size() {
        #expect(MemoryLayout<MemoryEntry>.stride == 72)
        #expect(MemoryLayout<MemoryCacheShard<String, MemoryEntry>.Slot>.stride == 136)
    }
}
