import ConcordChaos
import Testing

/// Redis may lose what it acknowledged just before a failover; the checker owes Concord nothing
/// for those writes, and everything else as before.
@Suite struct FailoverAllowanceTests {
    let checker = ConsistencyChecker.test

    @Test func aWriteAcknowledgedJustBeforeAFailoverMayBeLostAndReadBackOlder() {
        var h = HistoryBuilder()
        h.write("n1", "k", v: 1, 0, 10)
        h.fault("master-kill", targets: [Fault.redisTarget], 1_000, heal: 1_500)
        h.write("n1", "k", v: 2, 950, 960)  // within Δ before the kill: the replica may not have it
        h.read("n2", "k", v: 2, 970, 975)  // served before the failover
        h.read("n2", "k", v: 1, 2_000, 2_005)  // after it: the new master kept v1
        h.read("n1", "k", v: 1, 2_000, 2_005)
        h.read("n1", "k", v: 1, 3_000, 3_005, purpose: .final)
        h.read("n2", "k", v: 1, 3_000, 3_005, purpose: .final)
        let result = checker.check(h.history())
        #expect(result.passed, "\(result[.monotonicReads].violations) \(result[.noLostWrites].violations)")
        #expect(result[.noLostWrites].notes.contains { $0.contains("1 mutations acknowledged") && $0.contains("1 reads") })
    }

    @Test func writesAcknowledgedWellBeforeTheFailoverAreStillOwed() {
        var h = HistoryBuilder()
        h.write("n1", "k", v: 1, 0, 10)
        h.write("n1", "k", v: 2, 100, 110)  // long before the failover: replicated, owed
        h.fault("failover", targets: [Fault.redisTarget], 1_000, heal: 1_500)
        let bad = h.read("n2", "k", v: 1, 3_000, 3_005, purpose: .final)
        h.read("n1", "k", v: 2, 3_000, 3_005, purpose: .final)
        let result = checker.check(h.history())
        #expect(result.blamed(.noLostWrites) == [bad])
    }

    @Test func otherFaultsGetNoAllowance() {
        var h = HistoryBuilder()
        h.write("n1", "k", v: 1, 0, 10)
        h.fault("redis-kill", targets: [Fault.redisTarget], 1_000, heal: 1_500)
        h.write("n1", "k", v: 2, 950, 960)
        let bad = h.read("n2", "k", v: 1, 3_000, 3_005, purpose: .final)
        h.read("n1", "k", v: 2, 3_000, 3_005, purpose: .final)
        let result = checker.check(h.history())
        #expect(result.blamed(.noLostWrites) == [bad])
    }
}
