import Foundation

/// Everything a chaos run recorded: the nodes, every operation and every fault, on one timeline.
package struct History: Sendable, Codable, Hashable {
    /// Node ids in display order.
    package var nodes: [String]
    package var operations: [Operation]
    package var faults: [Fault]
    /// When recording stopped; bounds open faults and the last convergence window.
    package var end: Duration

    package init(nodes: [String] = [], operations: [Operation] = [], faults: [Fault] = [], end: Duration? = nil) {
        self.nodes = nodes
        self.operations = operations
        self.faults = faults
        let lastOperation = operations.map(\.end).max() ?? .zero
        let lastFault = faults.map { max($0.start, $0.heal ?? .zero) }.max() ?? .zero
        self.end = end ?? max(lastOperation, lastFault)
    }

    /// The file, next to `history.json`, holding the operations one JSON object per line.
    package static let operationsFileName = "operations.ndjson"

    /// Reads a run's history from its report directory: `history.json`, and the operations
    /// from `operations.ndjson` when `history.json` does not list them.
    package static func load(from directory: URL) throws -> History {
        var history: History
        do {
            history = try JSONDecoder().decode(History.self, from: Data(contentsOf: directory.appendingPathComponent("history.json")))
        } catch {
            throw ChaosError(.io, "cannot read the history in \(directory.path)", underlying: error)
        }
        let lines = directory.appendingPathComponent(operationsFileName)
        if history.operations.isEmpty, FileManager.default.fileExists(atPath: lines.path) {
            history.operations = try HistoryRecorder.readSpool(lines).sorted { ($0.start, $0.id) < ($1.start, $1.id) }
        }
        return history
    }

    /// Node ids from `nodes` plus any that only appear in operations, in a stable order.
    package var allNodes: [String] {
        var seen = Set(nodes)
        var result = nodes
        for operation in operations where !seen.contains(operation.node) {
            seen.insert(operation.node)
            result.append(operation.node)
        }
        return result
    }

    private enum CodingKeys: String, CodingKey {
        case nodes, operations, faults, endMs
    }

    package init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        nodes = try container.decode([String].self, forKey: .nodes)
        operations = try container.decodeIfPresent([Operation].self, forKey: .operations) ?? []
        faults = try container.decode([Fault].self, forKey: .faults)
        end = try container.decodeMilliseconds(forKey: .endMs)
    }

    package func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(nodes, forKey: .nodes)
        try container.encode(operations, forKey: .operations)
        try container.encode(faults, forKey: .faults)
        try container.encodeMilliseconds(end, forKey: .endMs)
    }
}
