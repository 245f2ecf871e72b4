/// The last mutations admitted or landed in L2, in order, each with its generation: a fixed
/// window, so a read can ask what happened since it began.
struct RecentMutations: Sendable {
    static let capacity = 4_096

    /// How many admissions and landings were ever recorded.
    private(set) var generation: UInt64 = 0
    private var ring: [(slot: String, version: CacheVersion)] = []
    private var start = 0

    mutating func append(slot: String, version: CacheVersion) {
        generation += 1
        if ring.count < Self.capacity {
            ring.append((slot, version))
        } else {
            ring[start] = (slot, version)
            start = (start + 1) % Self.capacity
        }
    }

    /// The mutations admitted after generation `mark`, oldest first; nil when the window no
    /// longer holds all of them.
    func since(_ mark: UInt64) -> [(slot: String, version: CacheVersion)]? {
        let count = generation &- mark
        guard count <= UInt64(ring.count) else { return nil }
        let wanted = Int(count)
        return (ring.count - wanted ..< ring.count).map { ring[(start + $0) % ring.count] }
    }
}
