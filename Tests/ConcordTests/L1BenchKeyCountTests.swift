import ConcordBench
import Testing

/// `concord bench --l1-keys` reaches the l1 suite: its rows say how many keys they read, and
/// both sides read that many. No figure is asserted: this is a debug build on a shared machine.
@Suite("The l1 bench suite's key count")
struct L1BenchKeyCountTests {
    @Test func aChosenKeyCountIsTheOneEveryHitRowReads() async {
        var runner = BenchRunner(suites: [.l1], quick: true)
        runner.l1KeyCount = 64
        let outcome = await runner.run()
        #expect(outcome.failures.isEmpty, "\(outcome.failures)")
        let hitRows = outcome.results.filter { $0.suite == "l1" && $0.note?.hasPrefix("reference: Mutex") == true }
        // tryGet and getOrSet, with 1 and with 2 tasks.
        #expect(hitRows.count == 4)
        for row in hitRows {
            #expect(row.note?.contains("; 64 keys;") == true, "\(row.name): \(row.note ?? "no note")")
            #expect(row.value > 0 && (row.reference ?? 0) > 0, "\(row.name) measured nothing")
        }
    }

    @Test(arguments: [0, -1, L1KeyCount.range.upperBound + 1])
    func aCountOutsideTheBoundsFailsTheSuiteWithItsReason(count: Int) async {
        var runner = BenchRunner(suites: [.l1], quick: true)
        runner.l1KeyCount = count
        let outcome = await runner.run()
        #expect(outcome.results.isEmpty)
        #expect(outcome.failures.count == 1)
        #expect(outcome.failures.first?.error == L1KeyCount.OutOfRange(count: count).description)
        #expect(outcome.failures.first?.error.contains("not \(count)") == true)
    }

    @Test func theDefaultIsWithinTheBoundsTheCommandAccepts() {
        #expect(L1KeyCount.range.contains(L1KeyCount.default))
        #expect(!L1KeyCount.range.contains(0))
    }
}
