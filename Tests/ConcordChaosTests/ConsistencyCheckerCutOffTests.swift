import ConcordChaos
import Testing

/// C4, bounded staleness while cut off: histories with partitions, queued writes and heals that
/// keep the bound and ones that break it, with the exact blame.
@Suite struct ConsistencyCheckerCutOffTests {
    let checker = ConsistencyChecker.test

    @Test func boundedStalenessWhileCutOffHolds() {
        var h = HistoryBuilder()
        h.write("n1", "k", v: 1, 0, 10)
        h.write("n1", "k", v: 2, 1_100, 1_110)
        h.fault("redis-down", targets: ["redis"], 1_000, heal: 5_000)
        h.read("n2", "k", v: 1, 1_500, 1_505)
        h.read("n2", "k", v: 1, 2_000, 2_005)  // 890 ms behind: within 1 s + Δ
        h.read("n2", "k", v: 1, 2_300, 2_305, stale: true)  // flagged: allowed
        h.read("n2", "k", v: 2, 3_000, 3_005)
        let result = checker.check(h.history())
        #expect(result[.boundedStalenessCutOff].violationCount == 0)
        #expect(result[.boundedStalenessCutOff].exempt == 1)
    }

    @Test func unflaggedOldValuesWhileCutOffBreakTheBound() {
        var h = HistoryBuilder()
        h.write("n1", "k", v: 1, 0, 10)
        let write = h.write("n1", "k", v: 2, 1_100, 1_110)
        h.fault("redis-down", targets: ["redis"], 1_000, heal: 5_000)
        h.read("n2", "k", v: 1, 1_500, 1_505)
        h.read("n2", "k", v: 1, 2_000, 2_005)
        let bad1 = h.read("n2", "k", v: 1, 2_300, 2_305)  // 1190 ms > 1100 ms
        let bad2 = h.read("n2", "k", v: 1, 3_000, 3_005)
        let result = checker.check(h.history())
        #expect(result[.boundedStalenessCutOff].violationCount == 2)
        #expect(result.blamed(.boundedStalenessCutOff) == [bad1, bad2])
        #expect(result[.boundedStalenessCutOff].violations[0].evidence.map(\.id) == [write])
        #expect(result[.boundedStalenessHealthy].violationCount == 0)
        #expect(result.worstStaleness == .milliseconds(1_890))
        #expect(result.worstStalenessReadID == bad2)
    }

    @Test func writesAcknowledgedInsideAPartitionAreOwedToConnectedNodesFromTheHeal() {
        var h = HistoryBuilder()
        h.nodes = ["n1", "n2", "n3"]
        h.write("n1", "k", v: 1, 0, 10)
        h.fault("partition-one", targets: ["n1"], 1_000, heal: 4_000)
        // n1 is cut off: its write is queued and cannot reach n2 before the heal.
        h.write("n1", "k", v: 2, 1_100, 1_110)
        h.read("n2", "k", v: 1, 3_500, 3_505)  // 2.4 s after the ack, but owed only from 4 s
        h.read("n3", "k", v: 1, 2_500, 2_505)
        h.read("n2", "k", v: 2, 4_300, 4_305)
        var result = checker.check(h.history())
        #expect(result[.boundedStalenessCutOff].violationCount == 0)
        #expect(result.stalenessByNode.first { $0.node == "n2" }?.worst == .zero)

        // Nodes cut off with the writer get no such grace: n3's old read is 1.39 s behind, over 1 s + Δ.
        var both = HistoryBuilder()
        both.nodes = ["n1", "n2", "n3"]
        both.write("n1", "k", v: 1, 0, 10)
        both.fault("partition-half", targets: ["n1", "n3"], 1_000, heal: 4_000)
        let write = both.write("n1", "k", v: 2, 1_100, 1_110)
        let bad = both.read("n3", "k", v: 1, 2_500, 2_505)
        result = checker.check(both.history())
        #expect(result.blamed(.boundedStalenessCutOff) == [bad])
        #expect(result[.boundedStalenessCutOff].violations[0].evidence.map(\.id) == [write])
    }

    @Test func afterTheHealAQueuedWriteIsOwedFromTheHeal() {
        var h = HistoryBuilder()
        h.write("n1", "k", v: 1, 0, 10)
        h.fault("redis-down", targets: ["redis"], 1_000, heal: 2_000)
        h.write("n1", "k", v: 2, 1_100, 1_110)  // queued by n1 until it reconnects
        h.read("n2", "k", v: 1, 1_900, 1_905)  // 790 ms after the ack, cut off: within 1 s + Δ
        h.read("n2", "k", v: 1, 2_400, 2_405)  // 1.29 s after the ack, but 400 ms after the heal
        var result = checker.check(h.history())
        #expect(result[.boundedStalenessCutOff].violationCount == 0)
        #expect(result[.boundedStalenessCutOff].checked == 2)
        #expect(result.worstStaleness == .milliseconds(790))

        // While the fault lasts, a node cut off with the writer owes it from the ack.
        var longer = HistoryBuilder()
        longer.write("n1", "k", v: 1, 0, 10)
        longer.fault("redis-down", targets: ["redis"], 1_000, heal: 3_000)
        let early = longer.write("n1", "k", v: 2, 1_100, 1_110)
        let late = longer.read("n2", "k", v: 1, 2_500, 2_505)  // 1.39 s after the ack, before the heal
        result = checker.check(longer.history())
        #expect(result.blamed(.boundedStalenessCutOff) == [late])
        #expect(result[.boundedStalenessCutOff].violations[0].evidence.map(\.id) == [early])
    }

    @Test func aQueuedWriteIsOwedEverywhereOnceThePartitionHasHealedAndSettled() {
        var h = HistoryBuilder()
        h.write("n1", "k", v: 1, 0, 10)
        h.fault("partition-one", targets: ["n1"], 1_000, heal: 2_000)
        let write = h.write("n1", "k", v: 2, 1_100, 1_110)
        // n2 was not touched: C3 judges its reads, and owes v2 from heal + convergence bound.
        h.read("n2", "k", v: 1, 2_400, 2_405)  // 400 ms after the heal: fine
        let bad = h.read("n2", "k", v: 1, 3_200, 3_205)  // past heal + convergence bound: C3 owes v2
        let result = checker.check(h.history())
        #expect(result[.boundedStalenessCutOff].violationCount == 0)
        #expect(result[.boundedStalenessCutOff].checked == 0)
        #expect(result[.boundedStalenessHealthy].checked == 2)
        #expect(result.blamed(.boundedStalenessHealthy) == [bad])
        #expect(result[.boundedStalenessHealthy].violations[0].evidence.map(\.id) == [write])
        #expect(result.worstStaleness == .milliseconds(1_200))
    }

    /// After the heal its writer may still be reconnecting, for up to the backoff cap (the
    /// convergence bound less Δ: 400 ms here); a write acknowledged then is queued as during
    /// the fault, so it too is owed from heal + convergence bound. A later one is owed from its
    /// ack + Δ.
    @Test func aWriteJustAfterTheHealIsOwedLikeOneDuringTheFault() {
        var h = HistoryBuilder()
        h.write("n1", "k", v: 1, 0, 10)
        h.fault("blackhole-deaf", targets: ["n1"], 1_000, heal: 2_000)
        h.write("n1", "k", v: 2, 2_200, 2_210)  // 200 ms after the heal
        h.read("n2", "k", v: 1, 2_400, 2_405)  // 190 ms after the ack, before heal + bound: fine
        let bad = h.read("n2", "k", v: 1, 2_600, 2_605)  // past heal + bound
        h.write("n1", "k", v: 3, 3_000, 3_010)  // past the reconnect allowance: owed from ack + Δ
        let late = h.read("n2", "k", v: 2, 3_200, 3_205)
        let result = checker.check(h.history())
        #expect(result.blamed(.boundedStalenessHealthy) == [bad, late])
    }

    @Test func aNodeNoFaultTouchedIsHeldToDeltaWhileAnotherIsCutOff() {
        var h = HistoryBuilder()
        h.nodes = ["n1", "n2", "n3"]
        h.write("n1", "k", v: 1, 0, 10)
        h.fault("partition-one", targets: ["n3"], 1_000, heal: 5_000)
        let write = h.write("n1", "k", v: 2, 1_100, 1_110)
        h.read("n2", "k", v: 1, 1_150, 1_155)  // within Δ
        let bad = h.read("n2", "k", v: 1, 1_400, 1_405)  // 290 ms after the ack: C3, not the cut-off bound
        h.read("n3", "k", v: 1, 1_400, 1_405)  // n3 is cut off: C4 allows 1.1 s
        let result = checker.check(h.history())
        #expect(result.blamed(.boundedStalenessHealthy) == [bad])
        #expect(result[.boundedStalenessHealthy].violations[0].evidence.map(\.id) == [write])
        #expect(result[.boundedStalenessCutOff].violationCount == 0)
        #expect(result[.boundedStalenessCutOff].checked == 1)
        #expect(result.coverage.judgedHealthy == 2)
        #expect(result.coverage.judgedCutOff == 1)
        #expect(result.coverage.reads == 3)
    }

    @Test func aClearSupersedesEveryKey() {
        var h = HistoryBuilder()
        h.write("n1", "a", v: 1, 0, 10)
        h.write("n1", "b", v: 1, 0, 10)
        let clear = h.write("n1", Operation.everyKey, v: 5, 100, 110, kind: .clear)
        h.read("n2", "a", v: 5, 300, 305)
        let bad = h.read("n2", "b", v: 1, 300, 305)  // the clear did not reach n2 for b
        let own = h.read("n1", "a", v: 1, 120, 125)  // and n1 read its old a after its own clear
        let result = checker.check(h.history())
        #expect(result.blamed(.boundedStalenessHealthy) == [bad])
        #expect(result[.boundedStalenessHealthy].violations[0].evidence.map(\.id) == [clear])
        #expect(result.blamed(.readYourWrites) == [own])
        #expect(result.counts.clears == 1)
    }

    @Test func aBackgroundWriteLostWithItsNodeIsExcusedAndOnlyThen() {
        func history(killAt: Double) -> (History, Int) {
            var h = HistoryBuilder()
            h.write("n1", "k", v: 1, 0, 10)
            h.write("n1", "k", v: 2, 100, 110, background: true)
            h.fault("node-kill", targets: ["n1"], killAt, heal: killAt + 100)
            let read = h.read("n2", "k", v: 1, 2_000, 2_005)
            return (h.history(), read)
        }
        // Killed 40 ms after the ack: the write may never have reached L2.
        var (lost, _) = history(killAt: 150)
        #expect(checker.check(lost).passed)
        // Killed long after: L2 had it, and n2 still serving v1 is a violation.
        let read: Int
        (lost, read) = history(killAt: 1_500)
        #expect(checker.check(lost).blamed(.boundedStalenessHealthy) == [read])
    }

    @Test func aBackgroundWriteCaughtOnItsNodeByAFaultIsOwedFromTheHeal() {
        // n1 acknowledges v2 in the background (before its L2 write) 3 ms before its link is
        // cut: the write waits in n1's queue until the heal, so n2, untouched, may serve v1
        // meanwhile; after heal + the convergence bound it may not.
        func history(background: Bool, cutAt: Double, readAt: Double) -> (History, Int) {
            var h = HistoryBuilder()
            h.write("n1", "k", v: 1, 0, 10)
            h.write("n1", "k", v: 2, 100, 110, background: background)
            h.fault("partition-one", targets: ["n1"], cutAt, heal: 4_000)
            let read = h.read("n2", "k", v: 1, readAt, readAt + 5)
            return (h.history(), read)
        }
        #expect(checker.check(history(background: true, cutAt: 113, readAt: 1_200).0).passed)
        let (late, lateRead) = history(background: true, cutAt: 113, readAt: 5_000)
        #expect(checker.check(late).blamed(.boundedStalenessHealthy) == [lateRead])
        // A write acknowledged after its L2 write was published before the cut: owed at ack + Δ.
        let (published, publishedRead) = history(background: false, cutAt: 113, readAt: 1_200)
        #expect(checker.check(published).blamed(.boundedStalenessHealthy) == [publishedRead])
        // A background write a fault caught only after Δ had reached L2 by then: owed too.
        let (reached, reachedRead) = history(background: true, cutAt: 1_150, readAt: 1_200)
        #expect(checker.check(reached).blamed(.boundedStalenessHealthy) == [reachedRead])
    }
}
