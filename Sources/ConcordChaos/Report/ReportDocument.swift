/// The machine-readable report (`report.json`): what CI and scripts read instead of the text.
public struct ReportDocument: Sendable, Hashable, Codable {
    /// One property's verdict; `violations` is the count, `details` the first ones in full.
    public struct PropertyEntry: Sendable, Hashable, Codable {
        public var id: String
        public var name: String
        public var passed: Bool
        public var violations: Int
        public var checked: Int
        public var exempt: Int
        public var notes: [String]
        public var details: [Violation]
    }

    /// A fault with its times and the convergence measured after its heal.
    public struct FaultEntry: Sendable, Hashable, Codable {
        public var id: Int
        public var kind: String
        public var targets: [String]
        public var detail: String?
        public var startMs: Double
        public var healMs: Double?
        public var convergenceMs: Double?
        public var converged: Bool?
        public var withinBound: Bool?
        public var skipped: String?
    }

    /// Worst staleness of unflagged reads, overall and per node.
    public struct StalenessEntry: Sendable, Hashable, Codable {
        public var worstMs: Double
        public var worstReadID: Int?
        public var byNode: [StalenessFigure]
    }

    public var formatVersion: Int
    public var title: String
    public var passed: Bool
    public var metadata: [String: String]
    /// Problems outside the six properties; non-empty means the run failed.
    public var findings: [String]
    public var bounds: ContractBounds
    public var nodes: [String]
    public var durationMs: Double
    public var counts: OperationCounts
    public var properties: [PropertyEntry]
    public var faults: [FaultEntry]
    public var convergence: [ConvergenceMeasurement]
    public var staleness: StalenessEntry
    public var lostWrites: [LostWrite]
    public var recovery: AutoRecoveryCounters
    /// The shares of successful reads C3 and C4 judged.
    public var coverage: StalenessCoverage
    /// Resource samples per process (at most 600 each, evenly thinned) and the growth verdicts.
    public var resources: [ResourceEntry]
    /// The growth rule, in words.
    public var growthRule: String
    /// Processes flagged for steady growth.
    public var growthFlags: [String]

    /// One process's soak figures.
    public struct ResourceEntry: Sendable, Hashable, Codable {
        public var process: String
        public var restarts: Int
        public var peakRSSBytes: Int
        public var peakFDs: Int
        public var memoryGrowth: GrowthRule.Verdict
        public var fdGrowth: GrowthRule.Verdict
        public var samples: [ResourceSample]
    }

    public init(report: ChaosReport) {
        let result = report.result
        let history = report.history
        formatVersion = 1
        title = report.title
        passed = report.passed
        metadata = report.metadata
        findings = report.findings
        coverage = result.coverage
        growthRule = report.growthRule.statement
        growthFlags = report.growthFlags
        resources = report.resources.map { series in
            let (memory, files) = series.growth(report.growthRule)
            return ResourceEntry(
                process: series.process, restarts: series.restarts, peakRSSBytes: series.peakResidentBytes, peakFDs: series.peakOpenFiles,
                memoryGrowth: memory, fdGrowth: files, samples: series.thinned(to: 600))
        }
        bounds = result.bounds
        nodes = history.allNodes
        durationMs = history.end.milliseconds
        counts = result.counts
        properties = result.properties.map {
            PropertyEntry(
                id: $0.property.rawValue, name: $0.property.title, passed: $0.passed, violations: $0.violationCount,
                checked: $0.checked, exempt: $0.exempt, notes: $0.notes, details: $0.violations)
        }
        faults = history.faults.sorted { $0.start < $1.start }.map { fault in
            let measured = result.convergence.first { $0.faultID == fault.id }
            return FaultEntry(
                id: fault.id, kind: fault.kind, targets: fault.targets, detail: fault.detail,
                startMs: fault.start.milliseconds, healMs: fault.heal?.milliseconds,
                convergenceMs: measured?.convergence?.milliseconds,
                converged: measured.flatMap { $0.skipped == nil ? $0.converged : nil },
                withinBound: measured.flatMap { $0.skipped == nil ? $0.withinBound : nil },
                skipped: measured?.skipped)
        }
        convergence = result.convergence
        staleness = StalenessEntry(
            worstMs: result.worstStaleness.milliseconds, worstReadID: result.worstStalenessReadID, byNode: result.stalenessByNode)
        lostWrites = result.lostWrites
        recovery = result.recovery
    }
}
