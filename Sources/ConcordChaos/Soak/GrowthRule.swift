/// When a resource counts as growing steadily, the rule the report states and applies:
/// after a warm-up (the first `warmupShare` of the samples), the rest is cut into `segments`
/// equal runs of samples; the resource grows steadily when the median of every segment is
/// above the median of the one before, and the last median exceeds the first by more than
/// `slack` (a share of the first) and by more than `floor` (an absolute amount). A restart
/// resets a process's memory, so restarts can hide growth but never fake it.
package struct GrowthRule: Sendable, Hashable {
    package var warmupShare: Double = 0.1
    package var segments: Int = 4
    /// Relative rise, first to last segment median, that memory must exceed.
    package var memorySlack: Double = 0.10
    /// Absolute rise memory must exceed (allocator noise).
    package var memoryFloorBytes: Double = 4 * 1_048_576
    package var filesSlack: Double = 0.10
    package var filesFloor: Double = 5
    /// Fewer samples than this after the warm-up give no verdict.
    package var minimumSamples: Int = 20
    /// Samples spanning less than this after the warm-up give no verdict: a short run's
    /// caches are still filling, which is not a leak.
    package var minimumSpan: Duration = .seconds(600)

    package init() {}

    /// What the rule concluded about one series.
    package struct Verdict: Sendable, Hashable, Codable {
        package var growing: Bool
        /// Segment medians, in order; empty when there were too few samples.
        package var medians: [Double]
        package var reason: String
    }

    /// One line for reports.
    package var statement: String {
        "over at least \(Int(minimumSpan.milliseconds / 60_000)) minutes after the first \(Int(warmupShare * 100))% of samples, \(segments) equal segments; growing steadily = every segment's median above the previous one's and the last above the first by more than \(Int(memorySlack * 100))% and 4 MiB (memory) or \(Int(filesSlack * 100))% and \(Int(filesFloor)) descriptors"
    }

    func judge(_ points: [(Duration, Double)], slack: Double, floor: Double) -> Verdict {
        let kept = Array(points.dropFirst(Int(Double(points.count) * warmupShare)))
        guard kept.count >= max(minimumSamples, segments), segments >= 2 else {
            return Verdict(growing: false, medians: [], reason: "too few samples (\(kept.count)) for a verdict")
        }
        let span = kept.last!.0 - kept.first!.0
        guard span >= minimumSpan else {
            return Verdict(growing: false, medians: [], reason: "\(span.shortDescription) of samples is too short for a verdict (at least \(minimumSpan.shortDescription))")
        }
        var medians: [Double] = []
        for segment in 0..<segments {
            let lower = segment * kept.count / segments
            let upper = (segment + 1) * kept.count / segments
            let values = kept[lower..<upper].map(\.1).sorted()
            medians.append(values[values.count / 2])
        }
        let rising = zip(medians, medians.dropFirst()).allSatisfy { $0 < $1 }
        let rise = medians.last! - medians.first!
        let growing = rising && rise > floor && rise > medians.first! * slack
        let reason = growing
            ? "every segment median rose, by \(Self.describe(rise)) in all"
            : rising ? "segment medians rose, but by only \(Self.describe(rise))" : "segment medians did not rise every time"
        return Verdict(growing: growing, medians: medians, reason: reason)
    }

    private static func describe(_ value: Double) -> String {
        value >= 1_048_576 ? "\(Int((value / 1_048_576).rounded())) MiB" : "\(Int(value.rounded()))"
    }
}
