@_spi(ConcordBackend) import Concord
import Synchronization

// L2 wrappers the L1 + L2 tests use to stop, fail or observe a distributed operation at a chosen point.

/// An L2 that can hold one read after it has read the store, so a test can land a mutation
/// between the read and its return.
final class HeldReadDistributedCache: DistributedCache {
    private let inner: any DistributedCache
    private let state = Mutex<(holdNext: Bool, gate: CheckedContinuation<Void, Never>?, heldWaiter: CheckedContinuation<Void, Never>?, isHeld: Bool)>((false, nil, nil, false))

    init(_ inner: any DistributedCache) { self.inner = inner }

    var isUsableWithoutRun: Bool { inner.isUsableWithoutRun }

    func holdNextRead() { state.withLock { $0.holdNext = true } }

    func waitUntilAReadIsHeld() async {
        await withCheckedContinuation { continuation in
            let ready = state.withLock { state -> Bool in
                if state.isHeld { return true }
                state.heldWaiter = continuation
                return false
            }
            if ready { continuation.resume() }
        }
    }

    func release() {
        let gate = state.withLock { state -> CheckedContinuation<Void, Never>? in
            defer { state.gate = nil }
            return state.gate
        }
        gate?.resume()
    }

    func read(_ key: String) async throws -> DistributedRead? {
        let result = try await inner.read(key)
        let holds = state.withLock { state -> Bool in
            defer { state.holdNext = false }
            return state.holdNext
        }
        guard holds else { return result }
        await withCheckedContinuation { continuation in
            let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
                state.gate = continuation
                state.isHeld = true
                defer { state.heldWaiter = nil }
                return state.heldWaiter
            }
            waiter?.resume()
        }
        return result
    }

    func apply(_ mutation: CacheMutation, publish: Bool) async throws -> MutationOutcome {
        try await inner.apply(mutation, publish: publish)
    }
}

/// An L2 whose writes fail while `failing` is set; reads always go through.
final class WriteFailingDistributedCache: DistributedCache {
    private let inner: any DistributedCache
    private let isFailing = Atomic<Bool>(false)

    init(_ inner: any DistributedCache) { self.inner = inner }

    var failing: Bool {
        get { isFailing.load(ordering: .relaxed) }
        set { isFailing.store(newValue, ordering: .relaxed) }
    }

    var isUsableWithoutRun: Bool { true }

    func read(_ key: String) async throws -> DistributedRead? { try await inner.read(key) }

    func apply(_ mutation: CacheMutation, publish: Bool) async throws -> MutationOutcome {
        if failing { throw CacheError(.distributedFailed, "writes are failing") }
        return try await inner.apply(mutation, publish: publish)
    }
}

/// Runs a step once, just before the next mutation reaches the wrapped L2: a way to make the
/// node hear something between making a write and learning its outcome.
final class ObservingDistributedCache: DistributedCache {
    private let inner: any DistributedCache
    private let pending = Mutex<(@Sendable () async -> Void)?>(nil)

    init(_ inner: any DistributedCache) { self.inner = inner }

    func beforeNextApply(_ step: @escaping @Sendable () async -> Void) {
        pending.withLock { $0 = step }
    }

    var isUsableWithoutRun: Bool { true }

    func read(_ key: String) async throws -> DistributedRead? { try await inner.read(key) }

    func apply(_ mutation: CacheMutation, publish: Bool) async throws -> MutationOutcome {
        if let step = pending.withLock({ state -> (@Sendable () async -> Void)? in
            defer { state = nil }
            return state
        }) {
            await step()
        }
        return try await inner.apply(mutation, publish: publish)
    }
}
