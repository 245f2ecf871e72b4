import Foundation

/// A chaos run's findings, written as a directory a person and a script can both read:
/// `report.txt`, `report.json` and `timeline.svg`.
package struct ChaosReport: Sendable {
    /// Where `write(to:)` put each file.
    package struct Files: Sendable, Hashable {
        package var text: URL
        package var json: URL
        package var timeline: URL
    }

    package var title: String
    package var history: History
    package var result: CheckResult
    /// Run settings worth repeating in the report (seed, duration, fault list...).
    package var metadata: [String: String]
    /// Problems the harness found outside the contract's six properties (a node that died on
    /// its own, corrupt bodies, nodes that stopped answering); any of them fails the run.
    package var findings: [String]
    /// Resident memory and open descriptors of every node, Redis and the harness, sampled over
    /// the run (the soak figures); empty for a rechecked history.
    package var resources: [ResourceSeries]
    /// The rule that flags steady growth in `resources`.
    package var growthRule = GrowthRule()

    package init(
        title: String = "Concord chaos report", history: History, result: CheckResult, metadata: [String: String] = [:],
        findings: [String] = [], resources: [ResourceSeries] = []
    ) {
        self.title = title
        self.history = history
        self.result = result
        self.metadata = metadata
        self.findings = findings
        self.resources = resources
    }

    /// Processes whose memory or descriptors grew steadily by `growthRule`, as report lines.
    package var growthFlags: [String] {
        resources.flatMap { series -> [String] in
            let (memory, files) = series.growth(growthRule)
            var flags: [String] = []
            if memory.growing { flags.append("\(series.process): resident memory grew steadily (\(memory.reason))") }
            if files.growing { flags.append("\(series.process): open descriptors grew steadily (\(files.reason))") }
            return flags
        }
    }

    /// Every property held and the harness found nothing else wrong.
    package var passed: Bool { result.passed && findings.isEmpty }

    /// Writes the three files into `directory`, creating it if needed.
    @discardableResult
    package func write(to directory: URL) throws -> Files {
        let files = Files(
            text: directory.appendingPathComponent("report.txt"),
            json: directory.appendingPathComponent("report.json"),
            timeline: directory.appendingPathComponent("timeline.svg"))
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            try Data(text().utf8).write(to: files.text, options: .atomic)
            try json().write(to: files.json, options: .atomic)
            try Data(TimelineSVG(report: self).render().utf8).write(to: files.timeline, options: .atomic)
        } catch let error as ChaosError {
            throw error
        } catch {
            throw ChaosError(.io, "could not write the report into \(directory.path)", underlying: error)
        }
        return files
    }

    package func json() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(ReportDocument(report: self))
    }

    /// The summary a person reads first, then every detailed violation with its history window.
    package func text() -> String {
        var out = ReportText()
        let verdict = passed ? "PASS" : "FAIL"
        out.line("\(title): \(verdict)")
        out.line(String(repeating: "=", count: title.count + verdict.count + 2))
        out.line("nodes: \(history.allNodes.joined(separator: ", "))   duration: \(history.end.shortDescription)   operations: \(history.operations.count)   faults: \(history.faults.count)")
        for key in metadata.keys.sorted() {
            out.line("\(key): \(metadata[key]!)")
        }
        let bounds = result.bounds
        out.line("bounds: Δ \(bounds.delta.shortDescription), maxDisconnectedStaleness \(bounds.maxDisconnectedStaleness.shortDescription), convergence \(bounds.convergenceBound.shortDescription)")
        out.blank()

        if !findings.isEmpty {
            out.line("Harness findings (each fails the run)")
            for finding in findings { out.line("  - \(finding)") }
            out.blank()
        }

        out.line("Contract")
        for property in result.properties {
            let name = "\(property.property.rawValue) \(property.property.title)".padding(toLength: 38, withPad: " ", startingAt: 0)
            out.line("  \(name) \(property.passed ? "PASS" : "FAIL")   violations \(property.violationCount)   checked \(property.checked)   stale-exempt \(property.exempt)")
        }
        out.line("  coverage: \(result.coverage.summary)")
        out.blank()

        let counts = result.counts
        out.line("Operations")
        out.line("  reads \(counts.reads) (stale-flagged \(counts.staleReads), not found \(counts.notFoundReads), probes \(counts.probes), final \(counts.finalReads))")
        out.line("  writes \(counts.writes) (background \(counts.backgroundWrites)), deletes \(counts.deletes), invalidations \(counts.invalidates), tag removals \(counts.tagRemovals) (per key), clears \(counts.clears), errors \(counts.errors)")
        out.blank()

        out.line("Worst staleness of unflagged reads (read start − when a newer version was owed: its ack, or for a write acknowledged during a fault, the heal)")
        for figure in result.stalenessByNode {
            let read = figure.readID.map { "  (read #\($0))" } ?? ""
            out.line("  \(figure.node.padding(toLength: 12, withPad: " ", startingAt: 0)) \(figure.worst.shortDescription)\(read)")
        }
        out.blank()

        out.line("Faults")
        if history.faults.isEmpty { out.line("  none") }
        for fault in history.faults.sorted(by: { $0.start < $1.start }) {
            let heal = fault.heal.map { "\($0.shortDescription) (lasted \(($0 - fault.start).shortDescription))" } ?? "never healed"
            var line = "  #\(fault.id) \(fault.kind) on \(fault.targets.joined(separator: ",")): \(fault.start.shortDescription) → \(heal)"
            if let measured = result.convergence.first(where: { $0.faultID == fault.id }) {
                line += "; " + Self.describe(measured, bound: bounds.convergenceBound)
            }
            if let detail = fault.detail { line += " [\(detail)]" }
            out.line(line)
        }
        out.blank()

        out.line("Convergence by fault kind (bound \(bounds.convergenceBound.shortDescription))")
        let measured = result.convergence.filter { $0.skipped == nil }
        if measured.isEmpty { out.line("  no heal measured") }
        for kind in Set(measured.map(\.kind)).sorted() {
            let heals = measured.filter { $0.kind == kind }
            let times = heals.compactMap(\.convergence)
            let worst = times.max().map(\.shortDescription) ?? "-"
            let failing = heals.filter { !$0.withinBound || !$0.converged }.count
            out.line("  \(kind.padding(toLength: 20, withPad: " ", startingAt: 0)) heals \(heals.count)   worst \(worst)   not converged in bound \(failing)")
        }
        out.blank()

        if !resources.isEmpty {
            out.line("Resources (sampled from /proc; steady growth: \(growthRule.statement))")
            for series in resources {
                let (memory, files) = series.growth(growthRule)
                let first = series.samples.first
                let last = series.samples.last
                let name = series.process.padding(toLength: 8, withPad: " ", startingAt: 0)
                let restarts = series.restarts > 0 ? "   restarts \(series.restarts)" : ""
                out.line("  \(name) RSS \(Self.mebibytes(first?.residentBytes)) → \(Self.mebibytes(last?.residentBytes)), peak \(Self.mebibytes(series.peakResidentBytes))\(memory.growing ? "  GROWING" : "")   fds \(first?.openFiles ?? 0) → \(last?.openFiles ?? 0), peak \(series.peakOpenFiles)\(files.growing ? "  GROWING" : "")   samples \(series.samples.count)\(restarts)")
                if !memory.medians.isEmpty {
                    out.line("           segment medians: RSS \(memory.medians.map { Self.mebibytes(Int($0)) }.joined(separator: ", ")); fds \(files.medians.map { String(Int($0)) }.joined(separator: ", "))")
                }
            }
            let flags = growthFlags
            out.line(flags.isEmpty ? "  no steady growth flagged" : "  FLAGGED: " + flags.joined(separator: "; "))
            out.blank()
        }

        out.line("Auto-recovery: queued \(result.recovery.queued), flushed \(result.recovery.flushed), overflowed \(result.recovery.overflowed)")
        if !result.lostWrites.isEmpty {
            out.line("Lost writes")
            for lost in result.lostWrites {
                let observed = lost.observed.map { "v\($0)" } ?? "not found"
                out.line("  \(lost.node)/\(lost.key): expected v\(lost.expected) (written by \(lost.writer), #\(lost.writeID)), read \(observed) (#\(lost.readID))\(lost.explainedByOverflow ? "; overflow counted" : "")")
            }
        }
        let notes = result.properties.flatMap { property in property.notes.map { "\(property.property.rawValue): \($0)" } }
        if !notes.isEmpty {
            out.blank()
            out.line("Notes")
            for note in notes { out.line("  \(note)") }
        }

        for property in result.properties where !property.passed {
            out.blank()
            out.line("Violations of \(property.property.rawValue) \(property.property.title): \(property.violationCount)\(property.violations.count < property.violationCount ? " (first \(property.violations.count) shown)" : "")")
            for (number, violation) in property.violations.enumerated() {
                out.line("  \(number + 1). \(violation.message)")
                let evidence = Set(violation.evidence.map(\.id))
                for operation in violation.window {
                    let marker = operation.id == violation.operation.id ? ">>" : (evidence.contains(operation.id) ? " *" : "  ")
                    out.line("     \(marker) \(operation.summary)")
                }
            }
        }
        return out.text
    }

    static func mebibytes(_ bytes: Int?) -> String {
        guard let bytes else { return "-" }
        return Duration.format(Double(bytes) / 1_048_576, digits: 1) + " MiB"
    }

    static func describe(_ measurement: ConvergenceMeasurement, bound: Duration) -> String {
        if let skipped = measurement.skipped { return "convergence not measured: \(skipped)" }
        guard measurement.converged, let convergence = measurement.convergence else {
            return "did NOT converge (\(measurement.laggingPairs.count) node/key pairs lagging)"
        }
        // The figure ends with the first current read; the verdict rests on the last stale one.
        let verdict = measurement.withinBound ? "no stale read started past the \(bound.shortDescription) bound" : "stale reads past the \(bound.shortDescription) bound"
        return "converged in \(convergence.shortDescription) (\(verdict))"
    }
}

/// Accumulates report lines.
struct ReportText {
    private(set) var text = ""

    mutating func line(_ string: String) {
        text += string
        text += "\n"
    }

    mutating func blank() { text += "\n" }
}
