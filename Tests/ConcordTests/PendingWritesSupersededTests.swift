@testable import Concord
import Testing

/// A clear or tag removal drops the queued mutations it supersedes, so that none of them can
/// land after Redis lost the marker (an epoch change between the marker and the flush).
@Suite("Pending writes superseded by a clear or tag removal")
struct PendingWritesSupersededTests {
    func version(_ milliseconds: Int64) -> CacheVersion {
        CacheVersion(milliseconds: milliseconds, counter: 0, node: "n")
    }

    func set(_ key: String, _ milliseconds: Int64, tags: [String] = []) -> CacheMutation {
        CacheMutation(
            kind: .set, key: key, version: version(milliseconds),
            entry: DistributedEntry(version: version(milliseconds), logicalExpiryMilliseconds: 4_000_000_000_000, tags: tags, payload: [1]),
            timeToLive: .seconds(60)
        )
    }

    /// Admits and queues a mutation, as a write whose L2 call failed.
    @discardableResult
    func queue(_ mutation: CacheMutation, droppable: Bool = false, in pending: PendingWrites) throws -> PendingWrites.Outcome {
        guard case .admitted(let reservation, _, _) = pending.admit(mutation, isDroppable: droppable) else {
            Issue.record("no room for \(mutation.key)")
            return .dropped(startsFullEpisode: false)
        }
        return pending.enqueue(mutation, target: .distributed(publish: true), reservation: reservation)
    }

    @Test func aClearDropsWhatIsQueuedBeforeItAndRefusesItLater() throws {
        let pending = PendingWrites(capacity: 100, maxBytes: 1 << 20)
        try queue(set("a", 5), in: pending)
        try queue(set("fill", 6), droppable: true, in: pending)
        try queue(CacheMutation(kind: .expire, key: "b", version: version(7), timeToLive: .seconds(60)), in: pending)
        try queue(CacheMutation(kind: .removeTag, key: "t", version: version(8), timeToLive: .seconds(60)), in: pending)
        try queue(set("later", 20), in: pending)
        #expect(pending.count == 5)

        #expect(pending.dropQueued(supersededBy: .clearExpire, key: "", version: version(10)) == 4)
        #expect(pending.batch(limit: 10).map(\.mutation.key) == ["later"])

        // A write older than the clear that fails to land afterwards is not queued again.
        #expect(try queue(set("a", 9), in: pending) == .superseded)
        #expect(try queue(set("a", 11), in: pending) == .queued)
        // Nor does a key's mutation drop anything.
        #expect(pending.dropQueued(supersededBy: .expire, key: "later", version: version(30)) == 0)
        #expect(pending.count == 2)
    }

    @Test func aTagRemovalDropsOnlyTheOlderSetsCarryingTheTag() throws {
        let pending = PendingWrites(capacity: 100, maxBytes: 1 << 20)
        try queue(set("tagged", 5, tags: ["t", "u"]), in: pending)
        try queue(set("other", 6, tags: ["u"]), in: pending)
        try queue(set("newer", 20, tags: ["t"]), in: pending)
        #expect(pending.dropQueued(supersededBy: .removeTag, key: "t", version: version(10)) == 1)
        #expect(Set(pending.batch(limit: 10).map(\.mutation.key)) == ["other", "newer"])
    }
}
