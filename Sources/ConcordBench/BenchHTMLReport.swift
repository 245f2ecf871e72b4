import Foundation

/// The self-contained HTML page of `concord bench --html FILE`: per suite, its table and one
/// inline SVG plot (no script, no external file): hit-ratio curves against LRU and Bélády's
/// optimum for `hitrate`, and for every other suite the distribution of each figure's rounds
/// next to its reference's, on a log scale.
package struct BenchHTMLReport: Sendable {
    package var results: [BenchResult]
    package var machine: [String: String]
    package var failures: [(suite: String, error: String)]

    package init(results: [BenchResult], machine: [String: String], failures: [(suite: String, error: String)] = []) {
        self.results = results
        self.machine = machine
        self.failures = failures
    }

    static let concordColor = "#1f6feb"
    static let referenceColor = "#d1242f"
    static let optimalColor = "#2da44e"

    package func render() -> String {
        var html = """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><title>concord bench</title>
        <style>
        body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #1f2328; max-width: 1100px; }
        h1 { font-size: 22px; } h2 { font-size: 18px; margin-top: 32px; border-bottom: 1px solid #d0d7de; }
        table { border-collapse: collapse; margin: 8px 0; } td, th { padding: 3px 8px; border-bottom: 1px solid #eaeef2; text-align: left; }
        td.num { text-align: right; font-variant-numeric: tabular-nums; } .no { color: #d1242f; font-weight: 600; } .yes { color: #2da44e; }
        .machine { color: #59636e; font-size: 12px; } svg text { font: 11px system-ui, sans-serif; fill: #1f2328; }
        .legend span { display: inline-block; margin-right: 16px; } .swatch { display: inline-block; width: 10px; height: 10px; margin-right: 4px; }
        </style></head><body>
        <h1>concord bench</h1>
        <p class="machine">\(Self.escape(machine.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " · ")))</p>
        <p class="legend"><span><i class="swatch" style="background:\(Self.concordColor)"></i>Concord</span><span><i class="swatch" style="background:\(Self.referenceColor)"></i>reference (same run)</span><span><i class="swatch" style="background:\(Self.optimalColor)"></i>optimal (hit rate)</span></p>

        """
        for failure in failures {
            html += "<p class=\"no\">could not run \(Self.escape(failure.suite)): \(Self.escape(failure.error))</p>\n"
        }
        var suites: [String] = []
        for result in results where !suites.contains(result.suite) { suites.append(result.suite) }
        for suite in suites {
            let figures = results.filter { $0.suite == suite }
            html += "<h2 id=\"\(Self.escape(suite))\">\(Self.escape(suite))</h2>\n"
            html += suite == "hitrate" ? Self.hitRatePlots(figures) : Self.distributionPlot(figures)
            html += Self.table(figures)
        }
        html += "</body></html>\n"
        return html
    }

    // MARK: - Tables

    static func table(_ figures: [BenchResult]) -> String {
        var html = "<table><tr><th>figure</th><th>value</th><th>reference</th><th>ratio</th><th>target</th><th>met</th></tr>\n"
        for figure in figures {
            let met = figure.met.map { $0 ? "<span class=\"yes\">yes</span>" : "<span class=\"no\">NO</span>" } ?? "-"
            html += "<tr><td>\(escape(figure.name))</td>"
            html += "<td class=\"num\">\(escape(BenchFormat.adaptive(figure.value))) \(escape(figure.unit))</td>"
            html += "<td class=\"num\">\(figure.reference.map { escape(BenchFormat.adaptive($0)) + " " + escape(figure.unit) } ?? "-")</td>"
            html += "<td class=\"num\">\(figure.ratio.map { BenchFormat.number($0, digits: 2) } ?? "-")</td>"
            html += "<td>\(escape(figure.target))</td><td>\(met)</td></tr>\n"
        }
        return html + "</table>\n"
    }

    // MARK: - Distributions

    /// One row per figure: each round of Concord (above) and of the reference (below) as a dot,
    /// the median as a tick, on a log axis spanning both.
    static func distributionPlot(_ figures: [BenchResult]) -> String {
        let labelWidth = 300.0, plotWidth = 640.0, rowHeight = 34.0
        let width = labelWidth + plotWidth + 160
        let height = rowHeight * Double(figures.count) + 10
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" role=\"img\" aria-label=\"round distributions\">\n"
        for (index, figure) in figures.enumerated() {
            let top = Double(index) * rowHeight + 4
            let values = figure.samples ?? [figure.value]
            let references = figure.referenceSamples ?? figure.reference.map { [$0] } ?? []
            let all = (values + references).filter { $0 > 0 && $0.isFinite }
            svg += "<text x=\"0\" y=\"\(format(top + 16))\">\(escape(truncated(figure.name, 48)))</text>\n"
            svg += "<line x1=\"\(format(labelWidth))\" y1=\"\(format(top + rowHeight - 6))\" x2=\"\(format(labelWidth + plotWidth))\" y2=\"\(format(top + rowHeight - 6))\" stroke=\"#d0d7de\"/>\n"
            guard let low = all.min(), let high = all.max() else { continue }
            // A decade of margin either side keeps a lone value off the edges.
            let lowLog = log10(low) - (low == high ? 0.5 : 0.05 * (log10(high) - log10(low)))
            let highLog = log10(high) + (low == high ? 0.5 : 0.05 * (log10(high) - log10(low)))
            func x(_ value: Double) -> Double {
                labelWidth + (log10(max(value, low)) - lowLog) / (highLog - lowLog) * plotWidth
            }
            func dots(_ samples: [Double], y: Double, color: String) -> String {
                var text = ""
                for sample in samples where sample > 0 && sample.isFinite {
                    text += "<circle cx=\"\(format(x(sample)))\" cy=\"\(format(y))\" r=\"3.5\" fill=\"\(color)\" fill-opacity=\"0.55\"/>"
                }
                let sorted = samples.sorted()
                if !sorted.isEmpty {
                    let median = sorted[sorted.count / 2]
                    text += "<line x1=\"\(format(x(median)))\" y1=\"\(format(y - 7))\" x2=\"\(format(x(median)))\" y2=\"\(format(y + 7))\" stroke=\"\(color)\" stroke-width=\"2\"/>"
                }
                return text + "\n"
            }
            svg += dots(values, y: top + 8, color: concordColor)
            svg += dots(references, y: top + 19, color: referenceColor)
            svg += "<text x=\"\(format(labelWidth + plotWidth + 6))\" y=\"\(format(top + 16))\">\(escape(BenchFormat.adaptive(low)))–\(escape(BenchFormat.adaptive(high))) \(escape(figure.unit))</text>\n"
        }
        return svg + "</svg>\n"
    }

    // MARK: - Hit rate

    /// Per trace, hit ratio against cache size (log axis): Concord, LRU and the optimum.
    static func hitRatePlots(_ figures: [BenchResult]) -> String {
        var traces: [String] = []
        for figure in figures where !traces.contains(figure.curve ?? "") { traces.append(figure.curve ?? "") }
        var html = ""
        for trace in traces {
            let points = figures.filter { ($0.curve ?? "") == trace }
                .compactMap { figure -> (fraction: Double, concord: Double, lru: Double, optimal: Double)? in
                    guard let fraction = figure.series?["cacheFraction"], let lru = figure.reference else { return nil }
                    return (fraction, figure.value, lru, figure.series?["optimal"] ?? figure.value)
                }
                .sorted { $0.fraction < $1.fraction }
            guard !points.isEmpty else { continue }
            let width = 560.0, height = 300.0, left = 50.0, bottom = 40.0, top = 24.0, right = 20.0
            let plotWidth = width - left - right, plotHeight = height - top - bottom
            let lowLog = log10(points.first!.fraction) - 0.15, highLog = log10(points.last!.fraction) + 0.15
            func x(_ fraction: Double) -> Double { left + (log10(fraction) - lowLog) / (highLog - lowLog) * plotWidth }
            func y(_ ratio: Double) -> Double { top + (1 - ratio) * plotHeight }
            var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" role=\"img\" aria-label=\"hit ratio, \(escape(trace))\">\n"
            svg += "<text x=\"\(format(left))\" y=\"14\" font-weight=\"600\">\(escape(trace)): hit ratio by cache size</text>\n"
            for tick in stride(from: 0.0, through: 1.0, by: 0.2) {
                svg += "<line x1=\"\(format(left))\" y1=\"\(format(y(tick)))\" x2=\"\(format(width - right))\" y2=\"\(format(y(tick)))\" stroke=\"#eaeef2\"/>"
                svg += "<text x=\"\(format(left - 6))\" y=\"\(format(y(tick) + 4))\" text-anchor=\"end\">\(format(tick))</text>\n"
            }
            for point in points {
                svg += "<text x=\"\(format(x(point.fraction)))\" y=\"\(format(height - bottom + 16))\" text-anchor=\"middle\">\(BenchFormat.number(point.fraction * 100, digits: 1))%</text>"
            }
            svg += "<text x=\"\(format(left + plotWidth / 2))\" y=\"\(format(height - 6))\" text-anchor=\"middle\">cache size, % of keyspace</text>\n"
            let lines: [(String, String, KeyPath<(fraction: Double, concord: Double, lru: Double, optimal: Double), Double>)] = [
                ("optimal", optimalColor, \.optimal), ("LRU", referenceColor, \.lru), ("Concord", concordColor, \.concord),
            ]
            for (name, color, path) in lines {
                let coordinates = points.map { "\(format(x($0.fraction))),\(format(y($0[keyPath: path])))" }.joined(separator: " ")
                svg += "<polyline points=\"\(coordinates)\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\"/>"
                for point in points {
                    svg += "<circle cx=\"\(format(x(point.fraction)))\" cy=\"\(format(y(point[keyPath: path])))\" r=\"3.5\" fill=\"\(color)\"><title>\(name) \(BenchFormat.number(point[keyPath: path], digits: 4))</title></circle>"
                }
                svg += "\n"
            }
            html += svg + "</svg>\n"
        }
        return html
    }

    // MARK: - Text

    static func escape(_ text: String) -> String {
        var escaped = ""
        escaped.reserveCapacity(text.utf8.count)
        for character in text {
            switch character {
            case "&": escaped += "&amp;"
            case "<": escaped += "&lt;"
            case ">": escaped += "&gt;"
            case "\"": escaped += "&quot;"
            default: escaped.append(character)
            }
        }
        return escaped
    }

    static func format(_ value: Double) -> String {
        String(format: "%.1f", value)
    }

    static func truncated(_ text: String, _ limit: Int) -> String {
        text.count <= limit ? text : String(text.prefix(limit - 1)) + "…"
    }
}
