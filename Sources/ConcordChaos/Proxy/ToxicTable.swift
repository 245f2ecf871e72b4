/// A toxic as installed on one direction, with an identity so timers armed for it can tell
/// whether it is still in force when they fire.
struct ActiveToxic: Sendable, Hashable {
    let toxic: Toxic
    let id: UInt64
    /// Uptime (NIODeadline nanoseconds) at which the toxic was set.
    let since: UInt64
}

/// The toxics in force on one direction, looked up once per chunk.
struct DirectionToxics: Sendable {
    var down: ActiveToxic?
    var timeout: ActiveToxic?
    var latency: ActiveToxic?
    var resetPeer: ActiveToxic?
    var slicer: ActiveToxic?
    var limitData: ActiveToxic?
    var bandwidth: ActiveToxic?

    static let none = DirectionToxics()

    var all: [ActiveToxic] {
        [down, timeout, latency, resetPeer, slicer, limitData, bandwidth].compactMap { $0 }
    }
}

/// The proxy's fault configuration: a plain value kept behind the proxy's mutex and tested
/// without sockets.
struct ToxicTable: Sendable {
    private var directions: [DirectionToxics] = [.none, .none]
    private var nextID: UInt64 = 1

    /// `down` on both directions: the link is gone, every connection closed.
    var isDown: Bool { directions.allSatisfy { $0.down != nil } }

    /// `down` on either direction refuses new connections: a TCP handshake needs both ways.
    var refusesConnections: Bool { directions.contains { $0.down != nil } }

    func toxics(_ direction: FlowDirection) -> DirectionToxics {
        directions[direction.rawValue]
    }

    /// Installs `toxic`, replacing one of the same kind, and returns the installed record.
    /// Both directions share one id when set together, so a timer can act on both at once.
    @discardableResult
    mutating func set(_ toxic: Toxic, direction: ProxyDirection, now: UInt64) -> ActiveToxic {
        let active = ActiveToxic(toxic: toxic, id: nextID, since: now)
        nextID += 1
        for flow in direction.concrete {
            Self.store(active, kind: toxic.kind, in: &directions[flow.rawValue])
        }
        return active
    }

    mutating func remove(_ kind: Toxic.Kind, direction: ProxyDirection) {
        for flow in direction.concrete {
            Self.store(nil, kind: kind, in: &directions[flow.rawValue])
        }
    }

    mutating func clear() {
        directions = [.none, .none]
    }

    /// Whether the toxic with this id is still installed on `direction`.
    func isActive(id: UInt64, direction: FlowDirection) -> Bool {
        directions[direction.rawValue].all.contains { $0.id == id }
    }

    /// Every installed toxic with the directions it covers, for display.
    var installed: [(toxic: Toxic, direction: ProxyDirection)] {
        var result: [(Toxic, ProxyDirection)] = []
        let up = directions[FlowDirection.upstream.rawValue].all
        let down = directions[FlowDirection.downstream.rawValue].all
        for toxic in up {
            result.append((toxic.toxic, down.contains(toxic) ? .both : .upstream))
        }
        for toxic in down where !up.contains(toxic) {
            result.append((toxic.toxic, .downstream))
        }
        return result
    }

    private static func store(_ value: ActiveToxic?, kind: Toxic.Kind, in toxics: inout DirectionToxics) {
        switch kind {
        case .down: toxics.down = value
        case .timeout: toxics.timeout = value
        case .latency: toxics.latency = value
        case .resetPeer: toxics.resetPeer = value
        case .slicer: toxics.slicer = value
        case .limitData: toxics.limitData = value
        case .bandwidth: toxics.bandwidth = value
        }
    }
}
