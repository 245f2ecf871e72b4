/// The ketama ring as libmemcached builds it (`MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED`), so Concord
/// places a key on the same server as libmemcached-based clients in other languages.
///
/// Each server gets `floor(weight share · 40 · servers) · 4` points (160 with equal weights): for
/// i in 0..<points/4, the MD5 of `host-i` (or `host:port-i` when the port is not 11211) yields four
/// little-endian 32-bit points. A key's hash is the first little-endian word of its MD5; it belongs
/// to the first point at or after it, wrapping round to the first point.
package struct KetamaContinuum: Sendable {
    /// A server on the ring, as named in the server list.
    package struct Server: Sendable, Hashable {
        package var host: String
        package var port: Int
        package var weight: Int

        package init(host: String, port: Int, weight: Int = 1) {
            self.host = host
            self.port = port
            self.weight = max(1, weight)
        }

        /// The text hashed for point group `index` (libmemcached omits the default port).
        package func pointName(_ index: Int) -> String {
            port == 11211 ? "\(host)-\(index)" : "\(host):\(port)-\(index)"
        }
    }

    /// A point on the ring and the index (into the server list) of the server that owns it.
    package struct Point: Sendable, Equatable {
        package var value: UInt32
        package var server: Int
    }

    package let points: [Point]

    /// The ring over `servers`; indexes in the result refer to this array.
    package init(servers: [Server]) {
        let totalWeight = servers.reduce(0) { $0 + $1.weight }
        var points: [Point] = []
        for (index, server) in servers.enumerated() {
            let share = Float(server.weight) / Float(totalWeight)
            let groups = Int((share * 160 / 4 * Float(servers.count) + 0.0000000001).rounded(.down))
            for group in 0..<groups {
                let digest = MD5.digest(Array(server.pointName(group).utf8))
                for alignment in 0..<4 {
                    points.append(Point(value: Self.word(digest, at: alignment * 4), server: index))
                }
            }
        }
        // Stable, so equal points keep server order, as libmemcached's continuum does in practice.
        self.points = points.enumerated().sorted { lhs, rhs in
            lhs.element.value != rhs.element.value ? lhs.element.value < rhs.element.value : lhs.offset < rhs.offset
        }.map(\.element)
    }

    /// The index of the server that owns `key`, nil for an empty ring.
    package func server(for key: some Collection<UInt8>) -> Int? {
        server(forHash: Self.hash(key))
    }

    /// The owner of a key hash: the first point at or after it, wrapping round.
    package func server(forHash hash: UInt32) -> Int? {
        guard !points.isEmpty else { return nil }
        var low = 0
        var high = points.count
        while low < high {
            let middle = low + (high - low) / 2
            if points[middle].value < hash { low = middle + 1 } else { high = middle }
        }
        return points[low == points.count ? 0 : low].server
    }

    /// libmemcached's MD5 key hash: the digest's first four bytes, little-endian.
    package static func hash(_ key: some Collection<UInt8>) -> UInt32 {
        word(MD5.digest(key), at: 0)
    }

    private static func word(_ digest: [UInt8], at offset: Int) -> UInt32 {
        UInt32(digest[offset]) | UInt32(digest[offset + 1]) << 8 | UInt32(digest[offset + 2]) << 16 | UInt32(digest[offset + 3]) << 24
    }
}
