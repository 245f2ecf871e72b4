import ConcordChaos
import Testing

/// Each property gets a history that keeps it and one that breaks it, with the exact blame.
@Suite struct ConsistencyCheckerTests {
    let checker = ConsistencyChecker.test

    // MARK: C1

    @Test func readYourWritesHolds() {
        var h = HistoryBuilder()
        h.write("n1", "k", v: 1, 0, 10)
        h.read("n1", "k", v: 1, 20, 25)
        h.write("n1", "k", v: 2, 30, 40)
        h.read("n1", "k", v: 1, 35, 45)  // overlaps the write: either version is fine
        h.read("n1", "k", v: 2, 50, 55)
        let result = checker.check(h.history())
        #expect(result[.readYourWrites].violationCount == 0)
        #expect(result[.readYourWrites].checked == 3)
        #expect(result.passed)
    }

    @Test func readYourWritesBroken() {
        var h = HistoryBuilder()
        h.write("n1", "k", v: 1, 0, 10)
        let write = h.write("n1", "k", v: 2, 30, 40)
        let bad = h.read("n1", "k", v: 1, 50, 55)
        h.read("n1", "k", v: 1, 60, 65, stale: true)  // flagged stale: exempt
        h.read("n2", "k", v: 1, 50, 55)  // another node: not C1's business (and within Δ)
        let result = checker.check(h.history())
        #expect(result[.readYourWrites].violationCount == 1)
        #expect(result.blamed(.readYourWrites) == [bad])
        #expect(result[.readYourWrites].exempt == 1)
        let violation = result[.readYourWrites].violations[0]
        #expect(violation.expectedAtLeast == 2)
        #expect(violation.evidence.map(\.id) == [write])
        #expect(violation.window.map(\.id).contains(write))
        #expect(!result.passed)
    }

    @Test func deleteCountsAsOwnWriteOfTheOriginVersion() {
        var h = HistoryBuilder()
        h.write("n1", "k", v: 1, 0, 10)
        h.write("n1", "k", v: 2, 20, 30, kind: .delete)
        let bad = h.read("n1", "k", v: 1, 40, 45)
        let result = checker.check(h.history())
        #expect(result.blamed(.readYourWrites) == [bad])
    }

    // MARK: C2

    @Test func monotonicReadsHold() {
        var h = HistoryBuilder()
        h.write("n1", "k", v: 1, 0, 5)
        h.write("n1", "k", v: 2, 8, 9)
        h.read("n2", "k", v: 1, 6, 7)
        h.read("n2", "k", v: 2, 10, 30)
        h.read("n2", "k", v: 1, 20, 25)  // overlaps the v2 read: no order between them
        let result = checker.check(h.history())
        #expect(result[.monotonicReads].violationCount == 0)
    }

    @Test func monotonicReadsBroken() {
        var h = HistoryBuilder()
        h.write("n1", "k", v: 1, 0, 5)
        h.write("n1", "k", v: 2, 8, 9)
        let first = h.read("n2", "k", v: 2, 10, 15)
        let bad = h.read("n2", "k", v: 1, 20, 25)
        h.read("n2", "k", v: 1, 30, 35, stale: true)
        let result = checker.check(h.history())
        #expect(result[.monotonicReads].violationCount == 1)
        #expect(result.blamed(.monotonicReads) == [bad])
        #expect(result[.monotonicReads].violations[0].evidence.map(\.id) == [first])
        #expect(result[.monotonicReads].exempt == 1)
        // Within Δ of the v2 ack, and written elsewhere: no other property is involved.
        #expect(result[.boundedStalenessHealthy].violationCount == 0)
        #expect(result[.readYourWrites].violationCount == 0)
    }

    // MARK: C3

    @Test func boundedStalenessWhileHealthyHolds() {
        var h = HistoryBuilder()
        h.write("n1", "k", v: 1, 0, 10)
        h.write("n1", "k", v: 2, 1_000, 1_010)
        h.read("n2", "k", v: 1, 500, 505)
        h.read("n2", "k", v: 1, 1_050, 1_055)  // within Δ of the ack
        h.read("n2", "k", v: 2, 1_200, 1_205)
        h.read("n2", "k", v: 2, 1_500, 1_505)
        let result = checker.check(h.history())
        #expect(result[.boundedStalenessHealthy].violationCount == 0)
        #expect(result[.boundedStalenessHealthy].checked == 4)
    }

    @Test func nodeMissingInvalidationsBreaksBoundedStaleness() {
        var h = HistoryBuilder()
        h.write("n1", "k", v: 1, 0, 10)
        let write = h.write("n1", "k", v: 2, 1_000, 1_010)
        h.read("n2", "k", v: 1, 500, 505)
        h.read("n2", "k", v: 1, 1_050, 1_055)
        let late1 = h.read("n2", "k", v: 1, 1_200, 1_205)
        let late2 = h.read("n2", "k", v: 1, 1_500, 1_505)
        let result = checker.check(h.history())
        #expect(result[.boundedStalenessHealthy].violationCount == 2)
        #expect(result.blamed(.boundedStalenessHealthy) == [late1, late2])
        #expect(result[.boundedStalenessHealthy].violations[0].evidence.map(\.id) == [write])
        #expect(result[.boundedStalenessHealthy].violations[0].expectedAtLeast == 2)
        #expect(result.worstStaleness == .milliseconds(490))
        #expect(result.stalenessByNode.first { $0.node == "n2" }?.worst == .milliseconds(490))
        #expect(result.stalenessByNode.first { $0.node == "n1" }?.worst == .zero)
        #expect(result.violatingOperationIDs == [late1, late2])
    }

    @Test func faultWindowsExemptFromHealthyBound() {
        var h = HistoryBuilder()
        h.write("n1", "k", v: 1, 0, 10)
        h.write("n1", "k", v: 2, 1_000, 1_010)
        h.fault("partition", targets: ["n2"], 1_100, heal: 1_150)
        h.read("n2", "k", v: 1, 1_200, 1_205)  // window runs to heal + 500 ms
        h.read("n2", "k", v: 1, 1_600, 1_605)
        h.read("n2", "k", v: 2, 1_700, 1_705)
        let result = checker.check(h.history())
        #expect(result[.boundedStalenessHealthy].violationCount == 0)
        #expect(result[.boundedStalenessCutOff].violationCount == 0)
        #expect(result[.boundedStalenessCutOff].checked == 2)
    }

    // MARK: C5

    private func convergenceHistory(n2Reads: [(Int64, Double)], end: Double = 4_000) -> (HistoryBuilder, [Int]) {
        var h = HistoryBuilder()
        h.write("n1", "k", v: 1, 0, 10)
        h.fault("partition", targets: ["n2"], 1_000, heal: 2_000)
        h.write("n1", "k", v: 2, 1_500, 1_510)
        h.read("n1", "k", v: 2, 2_010, 2_015, purpose: .probe)
        var ids: [Int] = []
        for (version, start) in n2Reads {
            ids.append(h.read("n2", "k", v: version, start, start + 5, purpose: .probe))
        }
        return (h, ids)
    }

    @Test func convergenceWithinBound() {
        let (h, _) = convergenceHistory(n2Reads: [(1, 2_010), (1, 2_200), (2, 2_400), (2, 2_600)])
        let result = checker.check(h.history())
        #expect(result[.convergence].violationCount == 0)
        #expect(result.convergence.count == 1)
        // Heal at 2 s; the first read serving v2 after the last v1 (2.2 s) ends at 2.405 s.
        #expect(result.convergence[0].convergence == .milliseconds(405))
        #expect(result.convergence[0].converged)
        #expect(result.convergence[0].withinBound)
        #expect(result.convergence[0].observedPairs == 2)
    }

    /// A stale-flagged read past the bound is fail-safe saying the node could not confirm the
    /// current value in time: C5 exempts and counts it, as C2 and C3 do. An unflagged one is a
    /// violation (`convergenceTooSlow`).
    @Test func staleFlaggedReadsPastTheBoundAreExemptNotViolations() {
        var (h, _) = convergenceHistory(n2Reads: [(1, 2_010)])
        h.read("n2", "k", v: 1, 2_700, 2_705, stale: true, purpose: .probe)
        let result = checker.check(h.history())
        #expect(result[.convergence].violationCount == 0)
        #expect(result[.convergence].exempt == 1)
    }

    @Test func convergenceTooSlow() {
        let (h, ids) = convergenceHistory(n2Reads: [(1, 2_010), (1, 2_200), (1, 2_700), (2, 2_800)])
        let result = checker.check(h.history())
        #expect(result[.convergence].violationCount == 1)
        #expect(result.blamed(.convergence) == [ids[2]])
        #expect(result[.convergence].violations[0].faultID == 1)
        #expect(result.convergence[0].convergence == .milliseconds(805))
        #expect(!result.convergence[0].withinBound)
        #expect(result.convergence[0].laggingPairs == ["n2/k"])
    }

    @Test func neverConvergingIsAViolation() {
        let (h, ids) = convergenceHistory(n2Reads: [(1, 2_010), (1, 2_600), (1, 3_500)])
        let result = checker.check(h.history())
        #expect(result[.convergence].violationCount == 1)
        #expect(result.blamed(.convergence) == [ids[2]])
        #expect(result.convergence[0].convergence == nil)
        #expect(!result.convergence[0].converged)
    }

    @Test func healWhileAnotherFaultLastsIsSkipped() {
        var (h, _) = convergenceHistory(n2Reads: [(1, 2_010), (1, 2_700)])
        h.fault("redis-down", targets: ["redis"], 1_800, heal: 3_000)
        let result = checker.check(h.history())
        let first = result.convergence.first { $0.faultID == 1 }
        #expect(first?.skipped != nil)
        // The later heal (3 s) is measured; the v1 read at 2.7 s is before it.
        #expect(result.convergence.first { $0.faultID == 2 }?.skipped == nil)
    }

    // MARK: C6

    private func finalHistory(n2Final: Int64) -> (HistoryBuilder, Int, Int) {
        var h = HistoryBuilder()
        h.fault("partition", targets: ["n1"], 0, heal: 200)
        h.write("n1", "k", v: 1, 10, 20)
        h.write("n1", "k", v: 2, 30, 40)
        let write = h.write("n1", "k", v: 3, 50, 60)
        h.read("n1", "k", v: 3, 2_000, 2_005, purpose: .final)
        let read = h.read("n2", "k", v: n2Final, 2_000, 2_005, purpose: .final)
        return (h, write, read)
    }

    @Test func noLostWritesHolds() {
        let (h, _, _) = finalHistory(n2Final: 3)
        let result = checker.check(h.history(), recovery: ["n1": .init(queued: 3, flushed: 3, overflowed: 0)])
        #expect(result[.noLostWrites].violationCount == 0)
        #expect(result[.noLostWrites].checked == 2)
        #expect(result.lostWrites.isEmpty)
        #expect(result.recovery.flushed == 3)
    }

    @Test func lostWriteWithoutOverflowIsAViolation() {
        let (h, write, read) = finalHistory(n2Final: 2)
        let result = checker.check(h.history(), recovery: ["n1": .init(queued: 3, flushed: 2, overflowed: 0)])
        #expect(result[.noLostWrites].violationCount == 1)
        #expect(result.blamed(.noLostWrites) == [read])
        #expect(result.lostWrites.count == 1)
        #expect(result.lostWrites[0].writeID == write)
        #expect(result.lostWrites[0].explainedByOverflow == false)
    }

    @Test func lostWriteWithCountedOverflowIsReportedNotViolated() {
        let (h, _, _) = finalHistory(n2Final: 2)
        let result = checker.check(h.history(), recovery: ["n1": .init(queued: 3, flushed: 1, overflowed: 1)])
        #expect(result[.noLostWrites].violationCount == 0)
        #expect(result.lostWrites.count == 1)
        #expect(result.lostWrites[0].explainedByOverflow)
    }

    /// A final read answered stale-flagged is read again (`finalStaleRereads`); the last final
    /// read is the node's answer, for C6 as for C5. A last one still behind is a loss.
    @Test(arguments: [Int64(3), 2])
    func theLastFinalReadIsJudged(lastRead: Int64) {
        var (h, _, _) = finalHistory(n2Final: 3)
        h.read("n2", "k", v: 2, 1_990, 1_995, stale: true, purpose: .final)
        let last = h.read("n2", "k", v: lastRead, 2_200, 2_205, purpose: .final)
        let result = checker.check(h.history(), recovery: ["n1": .init(queued: 3, flushed: 3, overflowed: 0)])
        #expect(result[.noLostWrites].checked == 2)
        #expect(result.blamed(.noLostWrites) == (lastRead == 3 ? [] : [last]))
    }

    @Test func probeStandsInForMissingFinalRead() {
        var h = HistoryBuilder()
        h.fault("partition", targets: ["n1"], 0, heal: 200)
        h.write("n1", "k", v: 5, 10, 20)
        h.read("n2", "k", v: 4, 300, 305, purpose: .probe)  // within the convergence bound: not judged
        let probe = h.read("n2", "k", v: 4, 800, 805, purpose: .probe)
        h.read("n1", "k", v: 5, 800, 805, purpose: .final)
        let result = checker.check(h.history())
        #expect(result.blamed(.noLostWrites) == [probe])
        #expect(result[.noLostWrites].checked == 2)
    }

    // MARK: Errors, counts, scale

    @Test func failuresAreCountedNotViolations() {
        var h = HistoryBuilder()
        h.write("n1", "k", v: 1, 0, 10)
        h.fail(.write, "n1", "k", 20, 30)
        h.fail(.read, "n2", "k", 500, 600)
        h.read("n2", "k", v: nil, 700, 705)  // not found long after v1: a C3 violation
        h.read("n2", "k", v: 1, 800, 805, stale: true)
        let result = checker.check(h.history())
        #expect(result.counts.errors == 2)
        #expect(result.counts.reads == 3)
        #expect(result.counts.writes == 2)
        #expect(result.counts.notFoundReads == 1)
        #expect(result.counts.staleReads == 1)
        #expect(result[.boundedStalenessHealthy].violationCount == 1)
    }

    @Test func largeCorrectHistoryPasses() {
        // 100k operations: 20 keys, one writer per key, readers returning the latest acked version
        // or one being written concurrently.
        var operations: [Operation] = []
        operations.reserveCapacity(100_000)
        var versions = [Int64](repeating: 0, count: 20)
        var acked = [Int64](repeating: 0, count: 20)
        var rng = SplitMix(seed: 42)
        var time = 0.0
        for id in 1...100_000 {
            time += 1
            let key = Int(rng.next() % 20)
            let node = "n\(rng.next() % 4 + 1)"
            if rng.next() % 5 == 0 {
                versions[key] += 1
                operations.append(Operation(
                    id: id, kind: .write, node: node, key: "k\(key)", start: .init(milliseconds: time),
                    end: .init(milliseconds: time + 0.5), outcome: .ok(version: versions[key])))
                acked[key] = versions[key]
            } else {
                operations.append(Operation(
                    id: id, kind: .read, node: node, key: "k\(key)", start: .init(milliseconds: time),
                    end: .init(milliseconds: time + 0.5), outcome: .ok(version: acked[key] == 0 ? nil : acked[key])))
            }
        }
        let history = History(nodes: ["n1", "n2", "n3", "n4"], operations: operations)
        let result = checker.check(history)
        #expect(result.passed)
        #expect(result.counts.reads + result.counts.writes == 100_000)
        #expect(result.worstStaleness == .zero)
    }
}

/// A seeded generator so the big history is the same every run.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
