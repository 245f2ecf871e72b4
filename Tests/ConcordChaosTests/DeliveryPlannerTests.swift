import Testing

@testable import ConcordChaos

@Suite struct DeliveryPlannerTests {
    private func toxics(_ list: [Toxic]) -> DirectionToxics {
        var table = ToxicTable()
        for toxic in list { table.set(toxic, direction: .upstream, now: 0) }
        return table.toxics(.upstream)
    }

    @Test func noToxicDeliversAtOnceInOnePiece() {
        var planner = DeliveryPlanner()
        var rng = SystemRandomNumberGenerator()
        let slices = planner.plan(byteCount: 100, now: 1_000, toxics: .none, using: &rng)
        #expect(slices == [.init(length: 100, deliverAt: 1_000)])
    }

    @Test func latencyWithJitterNeverReorders() {
        var planner = DeliveryPlanner()
        var rng = SystemRandomNumberGenerator()
        let toxics = toxics([.latency(.milliseconds(50), jitter: .milliseconds(40))])
        var last: UInt64 = 0
        for step in 0..<200 {
            let now = UInt64(step) * 1_000_000
            for slice in planner.plan(byteCount: 10, now: now, toxics: toxics, using: &rng) {
                #expect(slice.deliverAt >= last)
                #expect(slice.deliverAt >= now + 10_000_000)
                last = slice.deliverAt
            }
        }
    }

    @Test func slicerCutsWithinBoundsAndSpacesSlices() {
        var planner = DeliveryPlanner()
        var rng = SystemRandomNumberGenerator()
        let toxics = toxics([.slicer(averageSize: 10, variation: 3, delay: .milliseconds(1))])
        let slices = planner.plan(byteCount: 1_000, now: 0, toxics: toxics, using: &rng)
        #expect(slices.reduce(0) { $0 + $1.length } == 1_000)
        #expect(slices.dropLast().allSatisfy { (7...13).contains($0.length) })
        for (a, b) in zip(slices, slices.dropFirst()) {
            #expect(b.deliverAt - a.deliverAt >= 1_000_000)
        }
    }

    @Test func bandwidthSpreadsBytesOverTime() {
        var planner = DeliveryPlanner()
        var rng = SystemRandomNumberGenerator()
        let toxics = toxics([.bandwidth(kilobytesPerSecond: 10)])
        let slices = planner.plan(byteCount: 10 * 1024, now: 0, toxics: toxics, using: &rng)
        // 10 KiB at 10 KiB/s takes a second on the simulated wire.
        #expect(slices.last!.deliverAt >= 999_000_000)
        #expect(slices.count == DeliveryPlanner.bandwidthSlicesPerSecond)
    }

    @Test func tableReplacesSameKindAndTracksDirections() {
        var table = ToxicTable()
        let first = table.set(.latency(.milliseconds(10)), direction: .both, now: 0)
        let second = table.set(.latency(.milliseconds(20)), direction: .upstream, now: 0)
        #expect(table.toxics(.upstream).latency == second)
        #expect(table.toxics(.downstream).latency == first)
        #expect(table.isActive(id: first.id, direction: .downstream))
        #expect(!table.isActive(id: first.id, direction: .upstream))
        table.set(.down, direction: .downstream, now: 0)
        #expect(!table.isDown)
        #expect(table.refusesConnections)
        table.set(.down, direction: .upstream, now: 0)
        #expect(table.isDown)
        table.clear()
        #expect(!table.isDown)
        #expect(table.installed.isEmpty)
    }
}
