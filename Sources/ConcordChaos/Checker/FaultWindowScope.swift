/// Which nodes a fault's window (start to heal + convergence bound) covers, where C4's loose
/// bound replaces C3's.
package enum FaultWindowScope: String, Sendable, Hashable, CaseIterable {
    /// Only the nodes the fault touched (every node for a fault on Redis): the contract.
    case perNode
    /// Every node, whatever the fault touched: what earlier checkers did; for comparisons only.
    case clusterWide
}
