import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Collects operations and faults from many concurrent workload tasks into one `History`.
///
/// A `Mutex` rather than an actor: recording is a few microseconds of appends, and an actor
/// hop per operation would add latency the harness then measures as the node's.
///
/// With a spool file, operations go to disk as they complete (one JSON object per line,
/// written in batches) instead of staying in memory, so an hour-long run keeps the harness's
/// memory flat; `snapshot()` reads them back.
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
        var recorded = 0
        /// Encoded lines not yet written to the spool.
        var pendingLines = Data()
        var spoolError: String?
    }

    package let clock: HarnessClock
    /// Where operations are streamed, one JSON object per line; nil keeps them in memory.
    package let spool: URL?
    /// The spool's descriptor, -1 without one.
    private let spoolDescriptor: Int32
    private let state: Mutex<State>
    /// Encoded lines are written once this many bytes are pending.
    private static let spoolBatchBytes = 256 << 10

    package init(nodes: [String] = [], clock: HarnessClock = .init(), expectedOperations: Int = 100_000) {
        self.clock = clock
        self.spool = nil
        self.spoolDescriptor = -1
        var operations: [Operation] = []
        operations.reserveCapacity(expectedOperations)
        self.state = Mutex(State(nodes: nodes, operations: operations))
    }

    /// A recorder that streams operations to `spool` (created or truncated).
    package init(nodes: [String] = [], clock: HarnessClock = .init(), spool: URL) throws {
        self.clock = clock
        self.spool = spool
        let descriptor = open(spool.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw ChaosError(.io, "cannot create the history spool \(spool.path): errno \(errno)")
        }
        self.spoolDescriptor = descriptor
        self.state = Mutex(State(nodes: nodes, operations: []))
    }

    deinit {
        if spoolDescriptor >= 0 { close(spoolDescriptor) }
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
    package func complete(
        _ pending: Pending, _ outcome: Operation.Outcome, stale: Bool = false, source: Operation.Source? = nil, background: Bool = false
    ) -> Operation {
        let operation = Operation(
            id: pending.id, kind: pending.kind, node: pending.node, key: pending.key,
            start: pending.start, end: clock.now(), outcome: outcome, stale: stale, source: source, purpose: pending.purpose,
            background: background)
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
        guard spoolDescriptor >= 0 else {
            state.withLock { state in
                state.operations.append(operation)
                state.recorded += 1
                state.nextOperationID = max(state.nextOperationID, operation.id + 1)
            }
            return
        }
        // Encoded outside the lock: the lock only guards the append.
        var line = (try? JSONEncoder().encode(operation)) ?? Data()
        line.append(UInt8(ascii: "\n"))
        state.withLock { state in
            state.pendingLines.append(line)
            state.recorded += 1
            state.nextOperationID = max(state.nextOperationID, operation.id + 1)
            if state.pendingLines.count >= Self.spoolBatchBytes {
                Self.write(&state, to: spoolDescriptor)
            }
        }
    }

    private static func write(_ state: inout State, to descriptor: Int32) {
        guard !state.pendingLines.isEmpty else { return }
        let failure = state.pendingLines.withUnsafeBytes { bytes -> Int32? in
            var offset = 0
            while offset < bytes.count {
                let written = Glibc.write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    return errno
                }
                offset += written
            }
            return nil
        }
        if let failure, state.spoolError == nil { state.spoolError = "errno \(failure)" }
        state.pendingLines.removeAll(keepingCapacity: true)
    }

    /// Writes whatever is pending to the spool; throws if any write to it failed.
    package func flush() throws {
        guard spoolDescriptor >= 0 else { return }
        let descriptor = spoolDescriptor
        let failure = state.withLock { state -> String? in
            Self.write(&state, to: descriptor)
            return state.spoolError
        }
        if let failure, let spool {
            throw ChaosError(.io, "could not write the history spool \(spool.path): \(failure)")
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
    package func faultLossWindowEnded(_ id: Int, ago: Duration = .zero) {
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

    package var operationCount: Int { state.withLock { $0.recorded } }

    /// A copy of everything so far, operations ordered by start (read back from the spool if
    /// there is one). Throws only when the spool cannot be written or read.
    package func snapshot() throws -> History {
        let end = clock.now()
        try flush()
        var (nodes, operations, faults) = state.withLock { ($0.nodes, $0.operations, $0.faults) }
        if let spool {
            operations = try Self.readSpool(spool)
        }
        operations.sort { ($0.start, $0.id) < ($1.start, $1.id) }
        let lastEnd = operations.map(\.end).max() ?? .zero
        return History(nodes: nodes, operations: operations, faults: faults, end: max(end, lastEnd))
    }

    /// The operations of a spool file (one JSON object per line).
    package static func readSpool(_ url: URL) throws -> [Operation] {
        let data: Data
        do {
            data = try Data(contentsOf: url, options: .alwaysMapped)
        } catch {
            throw ChaosError(.io, "cannot read the history spool \(url.path)", underlying: error)
        }
        let decoder = JSONDecoder()
        var operations: [Operation] = []
        var lineNumber = 0
        for line in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true) {
            lineNumber += 1
            do {
                operations.append(try decoder.decode(Operation.self, from: line))
            } catch {
                throw ChaosError(.io, "line \(lineNumber) of \(url.path) is not an operation", underlying: error)
            }
        }
        return operations
    }
}
