import Synchronization

/// Fans events out to every `events()` stream. Costs one atomic load when nobody listens.
final class EventHub: Sendable {
    private let subscriberCount = Atomic<Int>(0)
    private let continuations = Mutex<[UInt64: AsyncStream<CacheEvent>.Continuation]>([:])
    private let nextID = Atomic<UInt64>(0)
    private let bufferSize: Int

    init(bufferSize: Int) { self.bufferSize = bufferSize }

    var hasSubscribers: Bool { subscriberCount.load(ordering: .relaxed) > 0 }

    func stream() -> AsyncStream<CacheEvent> {
        let (stream, continuation) = AsyncStream<CacheEvent>.makeStream(bufferingPolicy: .bufferingNewest(bufferSize))
        let id = nextID.add(1, ordering: .relaxed).newValue
        continuations.withLock { $0[id] = continuation }
        subscriberCount.add(1, ordering: .relaxed)
        continuation.onTermination = { [weak self] _ in
            guard let self else { return }
            let removed = self.continuations.withLock { $0.removeValue(forKey: id) }
            if removed != nil { self.subscriberCount.subtract(1, ordering: .relaxed) }
        }
        return stream
    }

    /// Emits an event built lazily, only if someone listens.
    ///
    /// Only the check is inlined. `AsyncStream.Continuation` is a resilient type of the standard
    /// library, of a size known only at run time: with the fan-out inlined, every caller (the L1
    /// hit path among them) looked up its metadata twice on entry and sized its stack from it,
    /// whether anyone listened or not (`perf annotate` of `HybridCache.readMemory`: about 5% of
    /// its samples).
    @inline(__always)
    func emit(_ event: @autoclosure () -> CacheEvent) {
        guard hasSubscribers else { return }
        deliver(event())
    }

    @inline(never)
    private func deliver(_ event: CacheEvent) {
        let targets = continuations.withLock { Array($0.values) }
        for continuation in targets { continuation.yield(event) }
    }

    func finish() {
        let targets = continuations.withLock { state in
            defer { state.removeAll() }
            return Array(state.values)
        }
        for continuation in targets { continuation.finish() }
    }
}
