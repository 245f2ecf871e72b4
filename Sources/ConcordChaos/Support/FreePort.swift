import ConcordTesting

/// Asks the kernel for a free TCP port on 127.0.0.1. Nodes need fixed ports (a killed node is
/// restarted on the same one, and its proxy and client keep pointing there), so the harness
/// picks them up front instead of letting each node choose.
enum FreePort {
    static func next() throws -> Int {
        do {
            return try RedisServer.freePort()
        } catch {
            throw ChaosError(.io, "no free port on 127.0.0.1", underlying: error)
        }
    }

    /// `count` distinct free ports. Each is released before the next is asked for, so the
    /// kernel could hand one out twice; asking again until they differ rules that out.
    static func distinct(_ count: Int) throws -> [Int] {
        var ports: [Int] = []
        var attempts = 0
        while ports.count < count {
            attempts += 1
            guard attempts < count * 20 + 20 else { throw ChaosError(.io, "could not find \(count) distinct free ports") }
            let port = try next()
            if !ports.contains(port) { ports.append(port) }
        }
        return ports
    }
}
