/// Removals gathered while a shard is locked, delivered to the listener after it is unlocked,
/// so that a listener may call back into the cache without deadlocking.
@usableFromInline
struct RemovalBuffer<Key, Value> {
    /// False when there is no listener: then nothing is kept and nothing is allocated.
    @usableFromInline
    let isCollecting: Bool
    @usableFromInline
    var entries: [(key: Key, value: Value, cause: RemovalCause)] = []

    @inlinable
    init(isCollecting: Bool) {
        self.isCollecting = isCollecting
    }

    @inlinable
    mutating func append(_ key: Key, _ value: Value, _ cause: RemovalCause) {
        if isCollecting {
            entries.append((key, value, cause))
        }
    }

    @inlinable
    func deliver(to listener: ((Key, Value, RemovalCause) -> Void)?) {
        guard let listener else { return }
        for entry in entries {
            listener(entry.key, entry.value, entry.cause)
        }
    }
}

extension RemovalBuffer: Sendable where Key: Sendable, Value: Sendable {}
