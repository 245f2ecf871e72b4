/// How the harness cuts nodes off from Redis (`concord chaos --network`).
package enum ChaosNetwork: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// One in-process fault proxy per node, on 127.0.0.1 (any user).
    case proxy
    /// Each node in its own network namespace; links cut by the kernel (root only).
    case netns

    package var description: String { rawValue }

    /// The fault kinds this network can inject: the kernel here has no packet delay or reset
    /// toolkit the harness relies on (`tc netem`, nft), so `latency` and `reset` need the proxy.
    package func supports(_ kind: FaultKind) -> Bool {
        switch (self, kind) {
        case (.netns, .latency), (.netns, .reset): false
        default: true
        }
    }

    /// Parses `proxy` or `netns`; throws `ChaosError(.invalidArgument)` naming both.
    package static func parse(_ text: String) throws -> ChaosNetwork {
        guard let network = ChaosNetwork(rawValue: text.trimmingCharacters(in: .whitespaces).lowercased()) else {
            throw ChaosError(.invalidArgument, "unknown network '\(text)'; use proxy or netns")
        }
        return network
    }
}
