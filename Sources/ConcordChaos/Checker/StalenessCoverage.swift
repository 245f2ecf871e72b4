import Foundation

/// How many successful reads each staleness bound judged: C3 (no fault touched the reading
/// node), C4 (a fault on that node, or on Redis, was under way or just healed), or neither
/// (stale-flagged, or nothing acknowledged yet for the key). The sharper C3's share, the
/// less the run leaves to the loose cut-off bound.
package struct StalenessCoverage: Sendable, Hashable, Codable {
    /// Successful reads of any purpose.
    package var reads: Int
    package var judgedHealthy: Int
    package var judgedCutOff: Int

    package init(reads: Int, judgedHealthy: Int, judgedCutOff: Int) {
        self.reads = reads
        self.judgedHealthy = judgedHealthy
        self.judgedCutOff = judgedCutOff
    }

    /// The share of successful reads C3 judged, 0...1.
    package var healthyShare: Double { reads == 0 ? 0 : Double(judgedHealthy) / Double(reads) }
    /// The share of successful reads C4 judged, 0...1.
    package var cutOffShare: Double { reads == 0 ? 0 : Double(judgedCutOff) / Double(reads) }

    /// One line for reports: both shares, with the counts behind them.
    package var summary: String {
        func percent(_ share: Double) -> String { String(format: "%.1f", share * 100) }
        return "C3 judged \(percent(healthyShare))% of \(reads) successful reads (\(judgedHealthy)), C4 \(percent(cutOffShare))% (\(judgedCutOff)); the rest were stale-flagged or had no acknowledged version to owe"
    }
}
