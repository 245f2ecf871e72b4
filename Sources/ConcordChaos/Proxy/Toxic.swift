/// A network fault the proxy applies, named after Toxiproxy's toxics so chaos scenarios read alike.
package enum Toxic: Sendable, Hashable, CustomStringConvertible {
    /// On both directions: refuse new connections (accept, then close at once) and drop the
    /// existing ones. On one direction: refuse new connections, and swallow what existing ones
    /// send that way while the other way still flows (a node that can send but not hear, or
    /// hear but not send).
    case down
    /// Blackhole: pass nothing, swallowing data until healed; when `closeAfter` is set, close each
    /// connection that long after the toxic was set (or the connection opened, whichever is later).
    case timeout(closeAfter: Duration? = nil)
    /// Delay each chunk by `delay` ± `jitter`; order is kept even when jitter would reorder.
    case latency(Duration, jitter: Duration = .zero)
    /// Reset connections (SO_LINGER 0, so the peer sees RST) `after` the toxic was set for existing
    /// ones, and `after` they opened for new ones.
    case resetPeer(after: Duration = .zero)
    /// Split each chunk into slices of `averageSize` ± `variation` bytes, `delay` apart.
    case slicer(averageSize: Int, variation: Int = 0, delay: Duration = .zero)
    /// Close the connection once `bytes` bytes have passed in this direction.
    case limitData(bytes: Int)
    /// Throttle to this many kilobytes (1024 bytes) per second.
    case bandwidth(kilobytesPerSecond: Int)

    /// One toxic of each kind may be active per direction; setting it again replaces it.
    package enum Kind: String, Sendable, Hashable, CaseIterable, Codable {
        case down, timeout, latency, resetPeer, slicer, limitData, bandwidth
    }

    package var kind: Kind {
        switch self {
        case .down: .down
        case .timeout: .timeout
        case .latency: .latency
        case .resetPeer: .resetPeer
        case .slicer: .slicer
        case .limitData: .limitData
        case .bandwidth: .bandwidth
        }
    }

    package var description: String {
        switch self {
        case .down: "down"
        case .timeout(let after): after.map { "timeout(close after \($0))" } ?? "timeout"
        case .latency(let delay, let jitter): "latency(\(delay) ± \(jitter))"
        case .resetPeer(let after): "resetPeer(after \(after))"
        case .slicer(let size, let variation, let delay): "slicer(\(size) ± \(variation) B, \(delay))"
        case .limitData(let bytes): "limitData(\(bytes) B)"
        case .bandwidth(let rate): "bandwidth(\(rate) KB/s)"
        }
    }
}

/// Which way through the proxy a toxic acts: upstream is client→server, downstream server→client.
package enum ProxyDirection: String, Sendable, Hashable, CaseIterable, Codable {
    case upstream
    case downstream
    case both

    /// The concrete directions this value covers.
    var concrete: [FlowDirection] {
        switch self {
        case .upstream: [.upstream]
        case .downstream: [.downstream]
        case .both: [.upstream, .downstream]
        }
    }
}

/// A single way through a proxied connection (never `.both`), used to index per-direction state.
enum FlowDirection: Int, Sendable, Hashable, CaseIterable {
    case upstream = 0
    case downstream = 1
}
