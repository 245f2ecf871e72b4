/// The write ids of the last sequence numbers a node applied, so it can tell a duplicate (same
/// number, same write) from a message that reuses a number for another write: history that
/// went back, or a forgery that got in first.
struct AppliedWrites: Sendable {
    /// How many sequence numbers are remembered.
    let capacity: Int
    private var ids: [UInt64: UInt64] = [:]
    private var order: [UInt64] = []
    private var next = 0

    init(capacity: Int = 1024) {
        self.capacity = capacity
        order.reserveCapacity(capacity)
    }

    /// Records that `writeID` was applied at `sequence`.
    mutating func record(_ writeID: UInt64, at sequence: UInt64) {
        if ids.updateValue(writeID, forKey: sequence) != nil { return }
        if order.count < capacity {
            order.append(sequence)
        } else {
            ids.removeValue(forKey: order[next])
            order[next] = sequence
            next = (next + 1) % capacity
        }
    }

    /// The write applied at `sequence`, if it is still remembered.
    func writeID(at sequence: UInt64) -> UInt64? { ids[sequence] }

    /// Forgets everything: a new epoch, or a position the node did not reach by applying.
    mutating func removeAll() {
        ids.removeAll(keepingCapacity: true)
        order.removeAll(keepingCapacity: true)
        next = 0
    }
}
