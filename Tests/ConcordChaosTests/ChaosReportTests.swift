import ConcordChaos
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing

@Suite struct ChaosReportTests {
    /// A small run: three nodes, a Redis outage and a partition, one node that misses invalidations.
    static func sampleHistory() -> History {
        var h = HistoryBuilder()
        h.nodes = ["n1", "n2", "n3"]
        var rng = SplitMix(seed: 7)
        var version: Int64 = 0
        var acked: Int64 = 0
        var time = 0.0
        h.fault("redis-down", targets: ["redis"], 3_000, heal: 5_000)
        h.fault("partition", targets: ["n3"], 8_000, heal: 9_500)
        while time < 12_000 {
            time += 20
            if rng.next() % 6 == 0 {
                version += 1
                h.write("n1", "k1", v: version, time, time + 4)
                acked = version
                continue
            }
            let node = ["n1", "n2", "n3"][Int(rng.next() % 3)]
            if rng.next() % 40 == 0 {
                h.fail(.read, node, "k1", time, time + 50)
                continue
            }
            var returned = acked
            var stale = false
            if node == "n2", time > 6_000, time < 7_000 {
                returned = max(1, acked - 3)  // n2 misses invalidations for a second: C3 violations
            }
            if node == "n3", time > 8_000, time < 9_500 {
                returned = max(1, acked - 1)
                stale = rng.next() % 2 == 0
            }
            h.read(node, "k1", v: returned == 0 ? nil : returned, time, time + 3, stale: stale,
                   purpose: time > 11_800 ? .final : .workload)
        }
        return h.history(end: 12_000)
    }

    @Test func writesReadableTextJSONAndWellFormedSVG() throws {
        let history = Self.sampleHistory()
        let result = ConsistencyChecker.test.check(history, recovery: ["n1": .init(queued: 4, flushed: 4, overflowed: 0)])
        #expect(result[.boundedStalenessHealthy].violationCount > 0)
        let report = ChaosReport(history: history, result: result, metadata: ["seed": "7"])
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("concord-report-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let files = try report.write(to: directory)

        let text = try String(contentsOf: files.text, encoding: .utf8)
        #expect(text.hasPrefix("Concord chaos report: FAIL"))
        #expect(text.contains("C3 bounded staleness while healthy"))
        #expect(text.contains("redis-down"))
        #expect(text.contains(">> #"))  // a blamed operation inside its window

        let document = try JSONDecoder().decode(ReportDocument.self, from: Data(contentsOf: files.json))
        #expect(document.passed == false)
        #expect(document.properties.map(\.id) == ["C1", "C2", "C3", "C4", "C5", "C6"])
        #expect(document.properties[2].violations == result[.boundedStalenessHealthy].violationCount)
        #expect(document.counts == result.counts)
        #expect(document.faults.count == 2)
        #expect(document.faults[0].healMs == 5_000)
        #expect(document.faults.allSatisfy { $0.convergenceMs != nil || $0.skipped != nil || $0.converged == false })
        #expect(document.metadata["seed"] == "7")

        let svg = try Data(contentsOf: files.timeline)
        let checker = SVGStructure()
        let parser = XMLParser(data: svg)
        parser.delegate = checker
        #expect(parser.parse(), "timeline.svg is not well-formed XML: \(String(describing: parser.parserError))")
        #expect(checker.root == "svg")
        #expect(checker.count["circle", default: 0] > 50)
        #expect(checker.texts.contains("n1"))
        #expect(checker.texts.contains { $0.contains("redis-down") })
        #expect(checker.texts.contains("violation"))
    }

    @Test func passingRunSaysPass() throws {
        var h = HistoryBuilder()
        h.write("n1", "k", v: 1, 0, 10)
        h.read("n2", "k", v: 1, 200, 205)
        let history = h.history()
        let report = ChaosReport(history: history, result: ConsistencyChecker.test.check(history))
        #expect(report.text().hasPrefix("Concord chaos report: PASS"))
        let document = try JSONDecoder().decode(ReportDocument.self, from: report.json())
        #expect(document.passed)
    }
}

/// Collects what the SVG contains while XMLParser checks that it is well-formed.
private final class SVGStructure: NSObject, XMLParserDelegate {
    var root: String?
    var count: [String: Int] = [:]
    var texts: [String] = []
    private var inText = false
    private var current = ""

    func parser(_ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
        if root == nil { root = elementName }
        count[elementName, default: 0] += 1
        if elementName == "text" {
            inText = true
            current = ""
        }
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) {
        if inText { current += string }
    }

    func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName: String?) {
        if elementName == "text" {
            inText = false
            texts.append(current)
        }
    }
}
