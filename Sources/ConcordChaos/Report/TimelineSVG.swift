/// Draws the run as a hand-written SVG: time across, one lane per node, faults as shaded bands,
/// each read a dot whose height and colour say how many versions behind it was.
struct TimelineSVG {
    let report: ChaosReport

    // Layout, in SVG user units.
    private let width = 1_400.0
    private let left = 110.0
    private let right = 30.0
    private let top = 70.0
    private let laneHeight = 90.0
    private let laneGap = 10.0
    private let maxBehind = 6

    private var plotWidth: Double { width - left - right }
    /// Where a current read sits in its lane, and how much higher each version behind lifts it.
    private var baselineOffset: Double { laneHeight - 16 }
    private var behindStep: Double { (laneHeight - 40) / Double(maxBehind) }

    /// Dot colours by versions behind: current, 1, 2–3, 4+.
    private static let behindColors = ["#2e7d32", "#f9a825", "#ef6c00", "#6d4c41"]
    private static let violationColor = "#d50000"
    private static let staleColor = "#7b1fa2"
    private static let writeColor = "#1565c0"
    private static let errorColor = "#757575"
    private static let faultColors = ["#ffb74d", "#90caf9", "#ce93d8", "#a5d6a7", "#f48fb1", "#80cbc4"]

    func render() -> String {
        let history = report.history
        let result = report.result
        let nodes = history.allNodes
        let index = HistoryIndex(history, bounds: result.bounds)
        let span = max(history.end.milliseconds, 1)
        let lanesBottom = top + Double(max(nodes.count, 1)) * (laneHeight + laneGap)
        let resourcePanels = report.resources.isEmpty ? 0.0 : 2 * (chartHeight + 40) + 30
        let height = lanesBottom + 120 + resourcePanels
        let laneOf = Dictionary(nodes.enumerated().map { ($1, $0) }, uniquingKeysWith: { first, _ in first })
        func x(_ ms: Double) -> Double { left + min(max(ms, 0), span) / span * plotWidth }
        func laneTop(_ lane: Int) -> Double { top + Double(lane) * (laneHeight + laneGap) }

        var svg = SVGWriter()
        svg.raw(##"<?xml version="1.0" encoding="UTF-8"?>"##)
        svg.raw(##"<svg xmlns="http://www.w3.org/2000/svg" width="\##(f(width))" height="\##(f(height))" viewBox="0 0 \##(f(width)) \##(f(height))" font-family="Helvetica, Arial, sans-serif" font-size="12">"##)
        svg.raw(##"<rect x="0" y="0" width="\##(f(width))" height="\##(f(height))" fill="#ffffff"/>"##)

        // Title.
        let verdict = report.passed ? "PASS" : "FAIL"
        let violations = result.properties.reduce(0) { $0 + $1.violationCount }
        svg.text(left, 28, "\(report.title): \(verdict)", size: 18, weight: "bold", fill: report.passed ? "#2e7d32" : Self.violationColor)
        svg.text(left, 48, "\(history.operations.count) operations, \(history.faults.count) faults, \(violations) violations; worst unflagged staleness \(result.worstStaleness.shortDescription)", size: 12, fill: "#424242")

        // Lanes.
        for (lane, node) in nodes.enumerated() {
            let y = laneTop(lane)
            svg.raw(##"<rect x="\##(f(left))" y="\##(f(y))" width="\##(f(plotWidth))" height="\##(f(laneHeight))" fill="#fafafa" stroke="#e0e0e0"/>"##)
            svg.text(12, y + laneHeight / 2 + 4, node, size: 13, weight: "bold")
            svg.text(left - 6, y + baselineOffset + 3, "0 behind", size: 9, anchor: "end", fill: "#757575")
            svg.text(left - 6, y + baselineOffset - Double(maxBehind) * behindStep + 3, "\(maxBehind)+ behind", size: 9, anchor: "end", fill: "#757575")
        }

        // Faults: bands over the lanes they cut (all lanes for Redis), with the convergence
        // allowance after the heal drawn paler.
        let kinds = Array(Set(history.faults.map(\.kind))).sorted()
        for fault in history.faults.sorted(by: { $0.start < $1.start }) {
            let color = Self.faultColors[(kinds.firstIndex(of: fault.kind) ?? 0) % Self.faultColors.count]
            let start = x(fault.start.milliseconds)
            let healMs = fault.heal?.milliseconds ?? span
            let end = max(x(healMs), start + 1)
            let allowanceEnd = x(healMs + result.bounds.convergenceBound.milliseconds)
            let lanes = fault.affectsAllNodes ? Array(nodes.indices) : fault.targets.compactMap { laneOf[$0] }
            for lane in lanes {
                let y = laneTop(lane)
                svg.raw(##"<rect x="\##(f(start))" y="\##(f(y))" width="\##(f(end - start))" height="\##(f(laneHeight))" fill="\##(color)" fill-opacity="0.45"/>"##)
                if fault.heal != nil, allowanceEnd > end {
                    svg.raw(##"<rect x="\##(f(end))" y="\##(f(y))" width="\##(f(allowanceEnd - end))" height="\##(f(laneHeight))" fill="\##(color)" fill-opacity="0.15"/>"##)
                }
            }
            let labelY = lanes.map(laneTop).min().map { $0 + 12 } ?? top + 12
            let targets = fault.affectsAllNodes ? "" : " " + fault.targets.joined(separator: ",")
            svg.text(start + 3, labelY, "#\(fault.id) \(fault.kind)\(targets)", size: 10, weight: "bold", fill: "#4e342e")
        }

        // Writes as ticks on the lane's top edge; failures as grey crosses.
        var drawn = Set<DotKey>()
        for operation in index.operations {
            guard let lane = laneOf[operation.node] else { continue }
            let px = x(operation.start.milliseconds)
            let y = laneTop(lane)
            if !operation.outcome.isOK {
                guard drawn.insert(DotKey(lane: lane, x: Int(px), y: -2, style: 9)).inserted else { continue }
                svg.raw(##"<path d="M\##(f(px - 3)) \##(f(y + laneHeight - 4))l6 -6m-6 0l6 6" stroke="\##(Self.errorColor)" stroke-width="1.2"/>"##)
            } else if operation.kind.isMutation {
                guard drawn.insert(DotKey(lane: lane, x: Int(px), y: -1, style: 8)).inserted else { continue }
                svg.raw(##"<path d="M\##(f(px - 3)) \##(f(y + 2))h6l-3 6z" fill="\##(Self.writeColor)"/>"##)
            }
        }

        // Reads: height and colour by versions behind the latest acked at the read's start.
        let baseline = baselineOffset
        let step = behindStep
        var violationDots: [String] = []
        for operation in index.operations where operation.kind == .read && operation.outcome.isOK {
            guard let lane = laneOf[operation.node] else { continue }
            let behind = index.versionsBehind(operation.key, rank: operation.rank, at: operation.start.nanosecondsValue)
            let px = x(operation.start.milliseconds)
            let py = laneTop(lane) + baseline - Double(min(behind, maxBehind)) * step
            let tooltip = "<title>\(xmlEscape(operation.summary)) — \(behind) behind</title>"
            if result.violatingOperationIDs.contains(operation.id) {
                // Violations are never thinned out and are drawn last, on top.
                violationDots.append(##"<circle cx="\##(f(px))" cy="\##(f(py))" r="4.5" fill="\##(Self.violationColor)" stroke="#5d0000" stroke-width="1">\##(tooltip)</circle>"##)
                continue
            }
            let style = operation.stale ? 7 : Self.colorIndex(behind)
            // Identical dots on the same pixel add nothing but file size; keep the first.
            guard drawn.insert(DotKey(lane: lane, x: Int(px), y: Int(py), style: style)).inserted else { continue }
            if operation.stale {
                svg.raw(##"<circle cx="\##(f(px))" cy="\##(f(py))" r="3" fill="none" stroke="\##(Self.staleColor)" stroke-width="1.3">\##(tooltip)</circle>"##)
            } else {
                svg.raw(##"<circle cx="\##(f(px))" cy="\##(f(py))" r="2.2" fill="\##(Self.behindColors[style])">\##(tooltip)</circle>"##)
            }
        }
        for dot in violationDots { svg.raw(dot) }

        // Time axis.
        let axisY = lanesBottom + 4
        svg.raw(##"<line x1="\##(f(left))" y1="\##(f(axisY))" x2="\##(f(left + plotWidth))" y2="\##(f(axisY))" stroke="#424242"/>"##)
        let tick = Self.tickStep(spanMs: span)
        var t = 0.0
        var ticks = 0
        while t <= span + 0.5, ticks < 200 {
            let px = x(t)
            svg.raw(##"<line x1="\##(f(px))" y1="\##(f(axisY))" x2="\##(f(px))" y2="\##(f(axisY + 5))" stroke="#424242"/>"##)
            svg.raw(##"<line x1="\##(f(px))" y1="\##(f(top))" x2="\##(f(px))" y2="\##(f(lanesBottom - laneGap))" stroke="#eeeeee" stroke-width="0.6"/>"##)
            svg.text(px, axisY + 18, Self.tickLabel(t, step: tick), size: 10, anchor: "middle", fill: "#424242")
            t += tick
            ticks += 1
        }
        svg.text(left + plotWidth / 2, axisY + 34, "time since harness start", size: 11, anchor: "middle", fill: "#424242")

        // Legend.
        let legendY = axisY + 60
        var lx = left
        func legend(_ symbol: String, _ label: String) {
            svg.raw(symbol.replacingOccurrences(of: "{x}", with: f(lx + 5)).replacingOccurrences(of: "{y}", with: f(legendY - 4)))
            svg.text(lx + 14, legendY, label, size: 11)
            lx += 14 + Double(label.count) * 6.2 + 18
        }
        legend(##"<circle cx="{x}" cy="{y}" r="3" fill="\##(Self.behindColors[0])"/>"##, "read, current")
        legend(##"<circle cx="{x}" cy="{y}" r="3" fill="\##(Self.behindColors[1])"/>"##, "1 version behind")
        legend(##"<circle cx="{x}" cy="{y}" r="3" fill="\##(Self.behindColors[2])"/>"##, "2–3 behind")
        legend(##"<circle cx="{x}" cy="{y}" r="3" fill="\##(Self.behindColors[3])"/>"##, "4+ behind (higher = further behind)")
        legend(##"<circle cx="{x}" cy="{y}" r="3" fill="none" stroke="\##(Self.staleColor)" stroke-width="1.3"/>"##, "flagged stale")
        legend(##"<circle cx="{x}" cy="{y}" r="4.5" fill="\##(Self.violationColor)"/>"##, "violation")
        lx = left
        let second = legendY + 22
        func legend2(_ symbol: String, _ label: String) {
            svg.raw(symbol.replacingOccurrences(of: "{x}", with: f(lx + 5)).replacingOccurrences(of: "{y}", with: f(second - 4)))
            svg.text(lx + 14, second, label, size: 11)
            lx += 14 + Double(label.count) * 6.2 + 18
        }
        legend2(##"<path d="M{x} {y}m-3 -3h6l-3 6z" fill="\##(Self.writeColor)"/>"##, "acked write/delete/invalidate")
        legend2(##"<path d="M{x} {y}m-3 3l6 -6m-6 0l6 6" stroke="\##(Self.errorColor)" stroke-width="1.2"/>"##, "failed operation")
        for (number, kind) in kinds.enumerated() {
            let color = Self.faultColors[number % Self.faultColors.count]
            legend2(##"<rect x="{x}" y="{y}" width="10" height="10" transform="translate(-5 -5)" fill="\##(color)" fill-opacity="0.6"/>"##, "fault: \(kind)")
        }
        if !kinds.isEmpty {
            legend2(##"<rect x="{x}" y="{y}" width="10" height="10" transform="translate(-5 -5)" fill="#9e9e9e" fill-opacity="0.2"/>"##, "convergence allowance after heal")
        }

        if !report.resources.isEmpty {
            var chartTop = second + 40
            drawResourceChart(&svg, top: chartTop, title: "resident memory (MiB)", x: x) { Double($0.residentBytes) / 1_048_576 }
            chartTop += chartHeight + 40
            drawResourceChart(&svg, top: chartTop, title: "open file descriptors", x: x) { Double($0.openFiles) }
        }

        svg.raw("</svg>")
        return svg.text
    }

    private var chartHeight: Double { 110 }
    private static let seriesColors = ["#1565c0", "#2e7d32", "#ef6c00", "#6a1b9a", "#00838f", "#c62828", "#4e342e", "#37474f", "#ad1457", "#9e9d24"]

    /// One line per process over the run's time axis, with its scale and a legend; growing
    /// series (by the report's growth rule) are named in red.
    private func drawResourceChart(
        _ svg: inout SVGWriter, top chartTop: Double, title: String, x: (Double) -> Double, value: (ResourceSample) -> Double
    ) {
        let series = report.resources
        let peak = max(series.flatMap { $0.samples.map(value) }.max() ?? 1, 1)
        svg.raw(##"<rect x="\##(f(left))" y="\##(f(chartTop))" width="\##(f(plotWidth))" height="\##(f(chartHeight))" fill="#fafafa" stroke="#e0e0e0"/>"##)
        svg.text(left, chartTop - 8, title, size: 12, weight: "bold")
        svg.text(left - 6, chartTop + 10, Duration.format(peak, digits: peak < 10 ? 1 : 0), size: 9, anchor: "end", fill: "#757575")
        svg.text(left - 6, chartTop + chartHeight, "0", size: 9, anchor: "end", fill: "#757575")
        var legendX = left + 200
        for (number, process) in series.enumerated() {
            let color = Self.seriesColors[number % Self.seriesColors.count]
            let points = process.thinned(to: 700).map { sample in
                "\(f(x(sample.time.milliseconds))),\(f(chartTop + chartHeight - value(sample) / peak * (chartHeight - 4)))"
            }
            if !points.isEmpty {
                svg.raw(##"<polyline fill="none" stroke="\##(color)" stroke-width="1.2" points="\##(points.joined(separator: " "))"/>"##)
            }
            let (memory, files) = process.growth(report.growthRule)
            let growing = title.contains("memory") ? memory.growing : files.growing
            svg.raw(##"<rect x="\##(f(legendX))" y="\##(f(chartTop - 17))" width="10" height="3" fill="\##(color)"/>"##)
            svg.text(legendX + 13, chartTop - 12, process.process + (growing ? " (growing)" : ""), size: 10, fill: growing ? Self.violationColor : "#424242")
            legendX += 13 + Double(process.process.count + (growing ? 10 : 0)) * 6 + 14
        }
    }

    private static func colorIndex(_ behind: Int) -> Int {
        switch behind {
        case 0: 0
        case 1: 1
        case 2...3: 2
        default: 3
        }
    }

    /// A round step (1, 2 or 5 × 10^k ms) giving about ten ticks.
    static func tickStep(spanMs: Double) -> Double {
        let raw = max(spanMs / 10, 0.001)
        var magnitude = 1.0
        while magnitude * 10 <= raw { magnitude *= 10 }
        while magnitude > raw { magnitude /= 10 }
        for factor in [1.0, 2.0, 5.0, 10.0] where magnitude * factor >= raw {
            return magnitude * factor
        }
        return magnitude * 10
    }

    static func tickLabel(_ ms: Double, step: Double) -> String {
        if step >= 1_000 { return Duration.format(ms / 1_000, digits: step.truncatingRemainder(dividingBy: 1_000) == 0 ? 0 : 1) + "s" }
        return Duration.format(ms, digits: step >= 1 ? 0 : 2) + "ms"
    }

    private func f(_ value: Double) -> String { Duration.format(value, digits: 1) }
}

/// One drawn mark, so identical marks on the same pixel are written once.
private struct DotKey: Hashable {
    var lane: Int
    var x: Int
    var y: Int
    var style: Int
}

/// Accumulates SVG markup.
private struct SVGWriter {
    var text = ""

    mutating func raw(_ line: String) {
        text += line
        text += "\n"
    }

    mutating func text(
        _ x: Double, _ y: Double, _ content: String, size: Double, weight: String = "normal", anchor: String = "start",
        fill: String = "#212121"
    ) {
        raw(##"<text x="\##(Duration.format(x, digits: 1))" y="\##(Duration.format(y, digits: 1))" font-size="\##(Duration.format(size, digits: 0))" font-weight="\##(weight)" text-anchor="\##(anchor)" fill="\##(fill)">\##(xmlEscape(content))</text>"##)
    }
}

func xmlEscape(_ string: String) -> String {
    var out = ""
    out.reserveCapacity(string.count)
    for character in string {
        switch character {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        case "'": out += "&apos;"
        default: out.append(character)
        }
    }
    return out
}
