/// The machine-readable report (`report.json`): what CI and scripts read instead of the text.
package struct ReportDocument: Sendable, Hashable, Codable {
    /// One property's verdict; `violations` is the count, `details` the first ones in full.
    package struct PropertyEntry: Sendable, Hashable, Codable {
        package var id: String
        package var name: String
        package var passed: Bool
        package var violations: Int
        package var checked: Int
        package var exempt: Int
        package var notes: [String]
        package var details: [Violation]
    }

    /// A fault with its times and the convergence measured after its heal.
    package struct FaultEntry: Sendable, Hashable, Codable {
        package var id: Int
        package var kind: String
        package var targets: [String]
        package var detail: String?
        package var startMs: Double
        package var healMs: Double?
        package var convergenceMs: Double?
        package var converged: Bool?
        package var withinBound: Bool?
        package var skipped: String?
    }

    /// Worst staleness of unflagged reads, overall and per node.
    package struct StalenessEntry: Sendable, Hashable, Codable {
        package var worstMs: Double
        package var worstReadID: Int?
        package var byNode: [StalenessFigure]
    }

    package var formatVersion: Int
    package var title: String
    package var passed: Bool
    package var metadata: [String: String]
    /// Problems outside the six properties; non-empty means the run failed.
    package var findings: [String]
    package var bounds: ContractBounds
    package var nodes: [String]
    package var durationMs: Double
    package var counts: OperationCounts
    package var properties: [PropertyEntry]
    package var faults: [FaultEntry]
    package var convergence: [ConvergenceMeasurement]
    package var staleness: StalenessEntry
    package var lostWrites: [LostWrite]
    package var recovery: AutoRecoveryCounters
    /// The shares of successful reads C3 and C4 judged.
    package var coverage: StalenessCoverage
    /// Resource samples per process (at most 600 each, evenly thinned) and the growth verdicts.
    package var resources: [ResourceEntry]
    /// The growth rule, in words.
    package var growthRule: String
    /// Processes flagged for steady growth.
    package var growthFlags: [String]

    /// One process's soak figures.
    package struct ResourceEntry: Sendable, Hashable, Codable {
        package var process: String
        package var restarts: Int
        package var peakRSSBytes: Int
        package var peakFDs: Int
        package var memoryGrowth: GrowthRule.Verdict
        package var fdGrowth: GrowthRule.Verdict
        package var samples: [ResourceSample]
    }

    package init(report: ChaosReport) {
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
