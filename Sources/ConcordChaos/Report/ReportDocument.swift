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

    package init(report: ChaosReport) {
        let result = report.result
        let history = report.history
        formatVersion = 1
        title = report.title
        passed = report.passed
        metadata = report.metadata
        findings = report.findings
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
