import ConcordChaos
import Foundation
import Testing

/// Foundation has an `Operation` too; in these tests the word means a recorded one.
typealias Operation = ConcordChaos.Operation

/// The checker proves it can fail: a history recorded by a real `concord chaos` run (which
/// passes) is mutated into each kind of violation, and each must be caught by the right
/// property, blaming the mutated read, with the operation that set the requirement as evidence.
///
/// The fixture (Fixtures/recorded-run) is a 3-node run with partitions, Redis kills, node kills,
/// invalidations, tag removals, clears and background writes, cut down to its hottest keys.
@Suite struct CheckerMutationTests {
    static let recorded: RecordedRun = RecordedRun.load()
    var run: RecordedRun { Self.recorded }

    @Test func theRecordedRunPassesUnmutated() {
        let result = run.check(run.history)
        #expect(result.passed, Comment(rawValue: result.properties.filter { !$0.passed }.map { "\($0.property.rawValue): \($0.violations.first?.message ?? "")" }.joined(separator: "\n")))
        // The ingredients every mutation below needs are there.
        let kinds = Set(run.history.operations.map(\.kind))
        #expect(kinds.isSuperset(of: [.read, .write, .delete, .invalidate]))
        #expect(run.history.faults.contains { $0.kind == FaultKind.partitionOne.rawValue })
        #expect(run.history.operations.contains { $0.purpose == .final })
    }

    @Test func aReadYourWritesMissIsCaughtByC1() throws {
        let ops = run.history.operations
        // The first write whose node later reads the key back, unflagged, at that version or newer.
        var site: (read: Int, floor: Int)?
        for write in ops where write.kind == .write && write.outcome.version != nil && write.purpose == .workload {
            let version = write.outcome.version!
            guard let read = ops.first(where: {
                $0.kind == .read && $0.node == write.node && $0.key == write.key && !$0.stale && $0.start > write.end
                    && ($0.outcome.version ?? 0) >= version
            }) else { continue }
            let floor = run.latestAck(on: write.key, by: write.node, before: read.start)!
            site = (read.id, floor.id)
            break
        }
        let (readID, floorID) = try #require(site)
        let floorVersion = try #require(run.operation(floorID).outcome.version)
        let mutated = run.mutating(readID) { $0.outcome = .ok(version: floorVersion - 1) }
        run.expectCaught(mutated, .readYourWrites, blaming: readID, evidence: floorID)
    }

    @Test func aNonMonotonicReadIsCaughtByC2() throws {
        let ops = run.history.operations
        var last: [String: Operation] = [:]
        var site: (read: Int, lowered: Int64)?
        for read in ops where read.kind == .read && read.outcome.isOK && !read.stale {
            let pair = "\(read.node)/\(read.key)"
            if let earlier = last[pair], let version = earlier.outcome.version, version >= 2, earlier.end < read.start,
                read.outcome.version == version
            {
                site = (read.id, version - 1)
                break
            }
            last[pair] = read
        }
        let (readID, lowered) = try #require(site)
        let mutated = run.mutating(readID) { $0.outcome = .ok(version: lowered) }
        let result = run.check(mutated)
        let violation = try #require(result[.monotonicReads].violations.first { $0.operation.id == readID })
        let evidence = try #require(violation.evidence.first)
        #expect(evidence.kind == .read && evidence.node == violation.operation.node && evidence.key == violation.operation.key)
        #expect(evidence.end < violation.operation.start && (evidence.outcome.version ?? 0) > lowered)
    }

    @Test func aStaleReadOnAHealthyNodeDuringAnotherNodesPartitionIsCaughtByC3() throws {
        let partitions = run.history.faults.filter { $0.kind == FaultKind.partitionOne.rawValue && $0.heal != nil }
        var site: (read: Int, floor: Int, fault: Fault)?
        search: for fault in partitions {
            for read in run.history.operations where read.kind == .read && read.outcome.isOK && !read.stale
                && read.start > fault.start && read.end < fault.heal! && !fault.targets.contains(read.node)
                && !run.touched(read.node, during: read.start ... read.end)
            {
                guard let floor = run.latestAck(on: read.key, before: read.start - run.bounds.delta), let version = floor.outcome.version,
                    version >= 2, !fault.targets.contains(floor.node), !run.hidden(floor), (read.outcome.version ?? 0) >= version
                else { continue }
                site = (read.id, floor.id, fault)
                break search
            }
        }
        let (readID, floorID, fault) = try #require(site)
        let floorVersion = try #require(run.operation(floorID).outcome.version)
        let mutated = run.mutating(readID) { $0.outcome = .ok(version: floorVersion - 1) }
        let result = run.expectCaught(mutated, .boundedStalenessHealthy, blaming: readID, evidence: floorID)
        // Inside another node's partition, yet not left to the loose cut-off bound.
        #expect(!result.blamed(.boundedStalenessCutOff).contains(readID))
        #expect(run.operation(readID).start < fault.heal!)
    }

    @Test func aStaleReadPastTheCutOffBoundIsCaughtByC4() throws {
        let allowance = run.bounds.maxDisconnectedStaleness + run.bounds.delta
        let partitions = run.history.faults.filter { $0.heal != nil && !$0.affectsAllNodes && $0.kind.hasPrefix("partition") }
        var site: (read: Int, superseding: Int)?
        search: for fault in partitions {
            for read in run.history.operations where read.kind == .read && read.outcome.isOK && !read.stale
                && fault.targets.contains(read.node) && read.start > fault.start && read.start < fault.heal!
            {
                // A version superseded, before the fault, by a write acked longer ago than the allowance.
                guard let superseding = run.history.operations.last(where: {
                    $0.key == read.key && $0.kind.isMutation && $0.kind != .clear && ($0.outcome.version ?? 0) >= 2
                        && $0.end < fault.start && $0.end < read.start - allowance && !run.hidden($0)
                }) else { continue }
                site = (read.id, superseding.id)
                break search
            }
        }
        let (readID, supersedingID) = try #require(site)
        let superseding = run.operation(supersedingID)
        let mutated = run.mutating(readID) { $0.outcome = .ok(version: superseding.outcome.version! - 1) }
        let result = run.check(mutated)
        let violation = try #require(result[.boundedStalenessCutOff].violations.first { $0.operation.id == readID })
        let evidence = try #require(violation.evidence.first)
        #expect(evidence.key == superseding.key && evidence.end <= superseding.end)
        #expect(evidence.outcome.version! >= superseding.outcome.version!)
    }

    @Test func aMissedConvergenceIsCaughtByC5() throws {
        let ops = run.history.operations
        let bound = run.bounds.convergenceBound
        var site: (reads: [Int], target: Int, fault: Fault)?
        search: for fault in run.history.faults.sorted(by: { $0.start < $1.start }) {
            guard let heal = fault.heal else { continue }
            let windowEnd = run.history.faults.map(\.start).filter { $0 > heal }.min() ?? run.history.end
            guard windowEnd - heal > bound + .milliseconds(500) else { continue }
            for probe in ops where probe.purpose == .probe && probe.start >= heal && probe.start < windowEnd && probe.outcome.isOK {
                guard let target = run.latestAck(on: probe.key, before: heal, inclusive: true), let version = target.outcome.version,
                    version >= 2
                else { continue }
                let reads = ops.filter {
                    $0.kind == .read && $0.outcome.isOK && $0.node == probe.node && $0.key == probe.key && $0.start >= heal && $0.start < windowEnd
                }.map(\.id)
                // Stale reads only within the bound would be inconclusive: the pair must be read
                // again after it.
                guard let last = reads.last, run.operation(last).start - heal > bound else { continue }
                site = (reads, target.id, fault)
                break search
            }
        }
        let (readIDs, targetID, fault) = try #require(site)
        let target = run.operation(targetID).outcome.version!
        var history = run.history
        for index in history.operations.indices where readIDs.contains(history.operations[index].id) {
            history.operations[index].outcome = .ok(version: target - 1)
        }
        let result = run.check(history)
        let violation = try #require(result[.convergence].violations.first { $0.faultID == fault.id })
        #expect(violation.operation.id == readIDs.last)
        #expect(violation.evidence.map(\.id) == [targetID])
        #expect(result.convergence.first { $0.faultID == fault.id }?.converged == false)
    }

    @Test func aLostAcknowledgedWriteIsCaughtByC6() throws {
        let final = try #require(run.history.operations.first {
            $0.purpose == .final && $0.outcome.isOK && (run.latestAck(on: $0.key, before: $0.start)?.outcome.version ?? 0) >= 2
        })
        let latest = run.latestAck(on: final.key, before: final.start)!
        let mutated = run.mutating(final.id) { $0.outcome = .ok(version: latest.outcome.version! - 1) }
        let result = run.expectCaught(mutated, .noLostWrites, blaming: final.id, evidence: latest.id)
        #expect(result.lostWrites.contains { $0.readID == final.id && !$0.explainedByOverflow })
    }

    @Test(arguments: [Operation.Kind.invalidate, .removeTag, .clear])
    func aLostInvalidationIsCaughtByC3(kind: Operation.Kind) throws {
        let ops = run.history.operations
        var site: (read: Int, invalidation: Int)?
        search: for invalidation in ops where invalidation.kind == kind && invalidation.outcome.version != nil && !run.hidden(invalidation) {
            let version = invalidation.outcome.version!
            for read in ops where read.kind == .read && read.outcome.isOK && !read.stale && read.node != invalidation.node
                && (kind == .clear || read.key == invalidation.key)
                && read.start > invalidation.end + run.bounds.delta && (read.outcome.version ?? 0) >= version
                && !run.touched(read.node, during: read.start ... read.end)
            {
                // The invalidation must be what the read owed: nothing newer acked before it.
                guard run.latestAck(on: read.key, before: read.start - run.bounds.delta)?.id == invalidation.id else { continue }
                site = (read.id, invalidation.id)
                break search
            }
        }
        let (readID, invalidationID) = try #require(site, "the recorded run has a \(kind) followed by a read on another node")
        let version = run.operation(invalidationID).outcome.version!
        let mutated = run.mutating(readID) { $0.outcome = .ok(version: version - 1) }
        run.expectCaught(mutated, .boundedStalenessHealthy, blaming: readID, evidence: invalidationID)
    }
}

/// A history `concord chaos` recorded, with the bounds and counters it was checked with.
struct RecordedRun: Sendable {
    var history: History
    var recovery: [String: AutoRecoveryCounters]
    var bounds: ContractBounds
    private var byID: [Int: Int]

    static func load() -> RecordedRun {
        let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/recorded-run")
        do {
            let decoder = JSONDecoder()
            let history = try History.load(from: directory)
            let recovery = try decoder.decode(
                [String: AutoRecoveryCounters].self, from: Data(contentsOf: directory.appendingPathComponent("recovery.json")))
            let bounds = try decoder.decode(ContractBounds.self, from: Data(contentsOf: directory.appendingPathComponent("bounds.json")))
            return RecordedRun(history: history, recovery: recovery, bounds: bounds)
        } catch {
            fatalError("the recorded run in \(directory.path) is missing or unreadable: \(error)")
        }
    }

    init(history: History, recovery: [String: AutoRecoveryCounters], bounds: ContractBounds) {
        self.history = history
        self.recovery = recovery
        self.bounds = bounds
        self.byID = Dictionary(uniqueKeysWithValues: history.operations.enumerated().map { ($1.id, $0) })
    }

    func check(_ history: History) -> CheckResult {
        ConsistencyChecker(bounds: bounds).check(history, recovery: recovery)
    }

    func operation(_ id: Int) -> Operation { history.operations[byID[id]!] }

    func mutating(_ id: Int, _ change: (inout Operation) -> Void) -> History {
        var copy = history
        change(&copy.operations[byID[id]!])
        return copy
    }

    /// The acknowledged mutation of `key` (a clear counts for every key) with the highest
    /// version among those ending before `time`, optionally only `node`'s own.
    func latestAck(on key: String, by node: String? = nil, before time: Duration, inclusive: Bool = false) -> Operation? {
        history.operations
            .filter {
                $0.kind.isMutation && $0.outcome.version != nil && ($0.key == key || $0.kind == .clear)
                    && (node == nil || $0.node == node) && (inclusive ? $0.end <= time : $0.end < time)
            }
            .max { ($0.outcome.version!, $1.end) < ($1.outcome.version!, $0.end) }
    }

    /// Whether a fault touching `node` (or Redis) overlaps `span`, widened by the convergence bound after its heal.
    func touched(_ node: String, during span: ClosedRange<Duration>) -> Bool {
        history.faults.contains { fault in
            guard fault.affectsAllNodes || fault.targets.contains(node) else { return false }
            let end = (fault.heal ?? history.end) + bounds.convergenceBound
            return fault.start <= span.upperBound && end >= span.lowerBound
        }
    }

    /// Whether a fault touched the mutation's node when it was acknowledged (its node may have queued it).
    func hidden(_ mutation: Operation) -> Bool {
        history.faults.contains { fault in
            (fault.affectsAllNodes || fault.targets.contains(mutation.node)) && fault.start <= mutation.end
                && mutation.end <= (fault.heal ?? history.end)
        }
    }

    /// Checks `mutated` and expects `property` to blame `read` with `evidence` first among its evidence.
    @discardableResult
    func expectCaught(
        _ mutated: History, _ property: ContractProperty, blaming read: Int, evidence: Int, sourceLocation: SourceLocation = #_sourceLocation
    ) -> CheckResult {
        let result = check(mutated)
        let violation = result[property].violations.first { $0.operation.id == read }
        #expect(violation != nil, "\(property.rawValue) did not blame #\(read)", sourceLocation: sourceLocation)
        #expect(violation?.evidence.first?.id == evidence, "evidence: \(violation?.evidence.map(\.summary) ?? [])", sourceLocation: sourceLocation)
        #expect(!result.passed, sourceLocation: sourceLocation)
        return result
    }
}
