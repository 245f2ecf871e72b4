/// A process's resource samples over a run (a node across its restarts, Redis, the harness
/// itself), and whether they grew steadily.
package struct ResourceSeries: Sendable, Hashable, Codable {
    /// "n1", ..., "redis" or "harness".
    package var process: String
    package var samples: [ResourceSample]
    /// How many times the process was started again during the run (a node kill, say); each
    /// restart starts its memory from scratch.
    package var restarts: Int

    package init(process: String, samples: [ResourceSample] = [], restarts: Int = 0) {
        self.process = process
        self.samples = samples
        self.restarts = restarts
    }

    package var peakResidentBytes: Int { samples.map(\.residentBytes).max() ?? 0 }
    package var peakOpenFiles: Int { samples.map(\.openFiles).max() ?? 0 }

    /// The verdict of `GrowthRule` on resident memory and on descriptors.
    package func growth(_ rule: GrowthRule = .init()) -> (memory: GrowthRule.Verdict, files: GrowthRule.Verdict) {
        (rule.judge(samples.map { ($0.time, Double($0.residentBytes)) }, slack: rule.memorySlack, floor: rule.memoryFloorBytes),
         rule.judge(samples.map { ($0.time, Double($0.openFiles)) }, slack: rule.filesSlack, floor: rule.filesFloor))
    }

    /// At most `count` samples, evenly spaced (for charts and JSON).
    package func thinned(to count: Int) -> [ResourceSample] {
        guard samples.count > count, count > 1 else { return samples }
        return (0..<count).map { samples[$0 * (samples.count - 1) / (count - 1)] }
    }
}
