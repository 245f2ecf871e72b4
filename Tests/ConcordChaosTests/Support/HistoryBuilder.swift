import ConcordChaos

/// Builds hand-made histories for checker tests; times are in milliseconds.
struct HistoryBuilder {
    private(set) var operations: [Operation] = []
    private(set) var faults: [Fault] = []
    var nodes: [String] = ["n1", "n2"]

    @discardableResult
    mutating func write(
        _ node: String, _ key: String, v version: Int64, _ start: Double, _ end: Double, kind: Operation.Kind = .write,
        background: Bool = false
    ) -> Int {
        append(kind, node, key, .ok(version: version), start, end, background: background)
    }

    @discardableResult
    mutating func read(
        _ node: String, _ key: String, v version: Int64?, _ start: Double, _ end: Double,
        stale: Bool = false, purpose: Operation.Purpose = .workload
    ) -> Int {
        append(.read, node, key, .ok(version: version), start, end, stale: stale, purpose: purpose)
    }

    @discardableResult
    mutating func fail(_ kind: Operation.Kind, _ node: String, _ key: String, _ start: Double, _ end: Double) -> Int {
        append(kind, node, key, .failed("timeout"), start, end)
    }

    @discardableResult
    mutating func fault(_ kind: String, targets: [String], _ start: Double, heal: Double?) -> Int {
        let id = faults.count + 1
        faults.append(Fault(id: id, kind: kind, targets: targets, start: .init(milliseconds: start), heal: heal.map { .init(milliseconds: $0) }))
        return id
    }

    private mutating func append(
        _ kind: Operation.Kind, _ node: String, _ key: String, _ outcome: Operation.Outcome, _ start: Double, _ end: Double,
        stale: Bool = false, purpose: Operation.Purpose = .workload, background: Bool = false
    ) -> Int {
        let id = operations.count + 1
        operations.append(
            Operation(
                id: id, kind: kind, node: node, key: key, start: .init(milliseconds: start), end: .init(milliseconds: end),
                outcome: outcome, stale: stale, source: kind == .read && outcome.isOK ? .memory : nil, purpose: purpose,
                background: background))
        return id
    }

    func history(end: Double? = nil) -> History {
        History(nodes: nodes, operations: operations, faults: faults, end: end.map { .init(milliseconds: $0) })
    }
}

extension ConsistencyChecker {
    /// Δ 100 ms, 1 s cut-off allowance, 500 ms convergence: small numbers that keep histories short.
    static let test = ConsistencyChecker(
        bounds: ContractBounds(delta: .milliseconds(100), maxDisconnectedStaleness: .seconds(1), convergenceBound: .milliseconds(500)))
}

extension CheckResult {
    func blamed(_ property: ContractProperty) -> [Int] {
        self[property].violations.map(\.operation.id)
    }
}
