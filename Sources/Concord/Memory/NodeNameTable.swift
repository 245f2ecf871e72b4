import Synchronization

/// Interns node ids for L1 entries: this node's own id, and a bounded set of others (a
/// cluster has few nodes, but ids that change on every restart must not grow the table
/// without end; past the bound, an entry gets a `NodeName` of its own, as correct, only larger).
final class NodeNameTable: Sendable {
    let own: NodeName
    private let others = Mutex<[String: NodeName]>([:])
    static let maxOthers = 1024

    init(own: String) {
        self.own = NodeName(own)
    }

    /// The shared `NodeName` for `node`.
    func intern(_ node: String) -> NodeName {
        if node == own.text { return own }
        return others.withLock { others in
            if let name = others[node] { return name }
            let name = NodeName(node)
            if others.count < Self.maxOthers { others[node] = name }
            return name
        }
    }
}
