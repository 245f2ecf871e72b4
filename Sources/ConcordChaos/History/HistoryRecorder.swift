import Synchronization

/// Collects operations and faults from many concurrent workload tasks into one `History`.
///
/// A `Mutex` rather than an actor: recording is a few hundred nanoseconds of appends, and an
/// actor hop per operation would add latency the harness then measures as the node's.
package final class HistoryRecorder: Sendable {
    /// What a finished request observed, handed to `complete` or returned from `measure`'s body.
    package struct Observation: Sendable, Hashable {
        package var version: Int64?
        package var stale: Bool
        package var source: Operation.Source?

        package init(version: Int64?, stale: Bool = false, source: Operation.Source? = nil) {
            self.version = version
            self.stale = stale
            self.source = source
        }
    }

    /// An operation that has started and not yet finished.
    package struct Pending: Sendable, Hashable {
        package let id: Int
        package let kind: Operation.Kind
        package let node: String
        package let key: String
        package let start: Duration
        package let purpose: Operation.Purpose
    }

    private struct State {
        var nodes: [String]
        var operations: [Operation]
        var faults: [Fault] = []
        var nextOperationID = 1
        var nextFaultID = 1
    }

    package let clock: HarnessClock
    private let state: Mutex<State>

    package init(nodes: [String] = [], clock: HarnessClock = .init(), expectedOperations: Int = 100_000) {
        self.clock = clock
        var operations: [Operation] = []
        operations.reserveCapacity(expectedOperations)
        self.state = Mutex(State(nodes: nodes, operations: operations))
    }

    package func now() -> Duration { clock.now() }

    package func addNode(_ node: String) {
        state.withLock { if !$0.nodes.contains(node) { $0.nodes.append(node) } }
    }

    /// Stamps the start of an operation and reserves its id.
    package func begin(_ kind: Operation.Kind, node: String, key: String, purpose: Operation.Purpose = .workload) -> Pending {
        let id = state.withLock { state in
            defer { state.nextOperationID += 1 }
            return state.nextOperationID
        }
        return Pending(id: id, kind: kind, node: node, key: key, start: clock.now(), purpose: purpose)
    }

    /// Stamps the end and records the operation.
    @discardableResult
    package func complete(_ pending: Pending, _ outcome: Operation.Outcome, stale: Bool = false, source: Operation.Source? = nil) -> Operation {
        let operation = Operation(
            id: pending.id, kind: pending.kind, node: pending.node, key: pending.key,
            start: pending.start, end: clock.now(), outcome: outcome, stale: stale, source: source, purpose: pending.purpose)
        record(operation)
        return operation
    }

    /// Runs one request and records it; a thrown error is recorded as a failed operation, never rethrown.
    @discardableResult
    package func measure(
        _ kind: Operation.Kind,
        node: String,
        key: String,
        purpose: Operation.Purpose = .workload,
        _ body: () async throws -> Observation
    ) async -> Operation {
        let pending = begin(kind, node: node, key: key, purpose: purpose)
        do {
            let observed = try await body()
            return complete(pending, .ok(version: observed.version), stale: observed.stale, source: observed.source)
        } catch {
            return complete(pending, .failed("\(error)"))
        }
    }

    /// Records an operation stamped elsewhere (replayed or built by hand).
    package func record(_ operation: Operation) {
        state.withLock { state in
            state.operations.append(operation)
            state.nextOperationID = max(state.nextOperationID, operation.id + 1)
        }
    }

    /// Records the start of a fault and returns its id, for `faultHealed`.
    @discardableResult
    package func faultStarted(kind: String, targets: [String], detail: String? = nil) -> Int {
        let now = clock.now()
        return state.withLock { state in
            let id = state.nextFaultID
            state.nextFaultID += 1
            state.faults.append(Fault(id: id, kind: kind, targets: targets, start: now, detail: detail))
            return id
        }
    }

    package func faultHealed(_ id: Int) {
        let now = clock.now()
        state.withLock { state in
            if let index = state.faults.firstIndex(where: { $0.id == id }), state.faults[index].heal == nil {
                state.faults[index].heal = now
            }
        }
    }

    /// Records until when a failover may have lost acknowledged writes, `ago` before now.
    public func faultLossWindowEnded(_ id: Int, ago: Duration = .zero) {
        let end = clock.now() - ago
        state.withLock { state in
            guard let index = state.faults.firstIndex(where: { $0.id == id }) else { return }
            state.faults[index].lossWindowEnd = end
        }
    }

    /// Appends `note` to a fault's detail (what the harness learned after the heal, say).
    package func annotateFault(_ id: Int, _ note: String) {
        state.withLock { state in
            guard let index = state.faults.firstIndex(where: { $0.id == id }) else { return }
            let detail = state.faults[index].detail
            state.faults[index].detail = detail.map { "\($0); \(note)" } ?? note
        }
    }

    package var operationCount: Int { state.withLock { $0.operations.count } }

    /// A copy of everything so far, operations ordered by start.
    package func snapshot() -> History {
        let end = clock.now()
        let (nodes, operations, faults) = state.withLock { ($0.nodes, $0.operations, $0.faults) }
        let sorted = operations.sorted { ($0.start, $0.id) < ($1.start, $1.id) }
        return History(nodes: nodes, operations: sorted, faults: faults, end: max(end, sorted.last?.end ?? .zero))
    }
}
