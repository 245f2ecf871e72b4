/// Decides, for one direction of one connection, how a received chunk is cut and when each piece
/// is delivered. Pure arithmetic on uptime nanoseconds so it is tested without a socket.
struct DeliveryPlanner: Sendable {
    /// One piece of a chunk and the uptime at which it may be written.
    struct Slice: Sendable, Hashable {
        var length: Int
        var deliverAt: UInt64
    }

    /// Deliveries never go backwards in time, which is what keeps order under jitter.
    private(set) var lastDelivery: UInt64 = 0

    /// Bandwidth shaping cuts big chunks into pieces worth this fraction of a second, so a
    /// throttled stream trickles instead of arriving in one late burst.
    static let bandwidthSlicesPerSecond = 20

    mutating func plan<R: RandomNumberGenerator>(
        byteCount: Int,
        now: UInt64,
        toxics: DirectionToxics,
        using rng: inout R
    ) -> [Slice] {
        guard byteCount > 0 else { return [] }

        var base = now
        if case .latency(let delay, let jitter)? = toxics.latency?.toxic {
            var offset = Self.nanoseconds(delay)
            let spread = Self.nanoseconds(jitter)
            if spread > 0 {
                offset += Int64.random(in: -spread...spread, using: &rng)
            }
            base = Self.add(now, max(0, offset))
        }

        var sliceDelay: UInt64 = 0
        var lengths: [Int]
        if case .slicer(let average, let variation, let delay)? = toxics.slicer?.toxic {
            sliceDelay = UInt64(max(0, Self.nanoseconds(delay)))
            lengths = Self.cut(byteCount, average: average, variation: variation, using: &rng)
        } else {
            lengths = [byteCount]
        }

        var bytesPerSecond: Int?
        if case .bandwidth(let rate)? = toxics.bandwidth?.toxic {
            let rate = max(1, rate) * 1024
            bytesPerSecond = rate
            let piece = max(1, rate / Self.bandwidthSlicesPerSecond)
            lengths = lengths.flatMap { Self.cut($0, fixed: piece) }
        }

        var slices: [Slice] = []
        slices.reserveCapacity(lengths.count)
        var at = max(base, lastDelivery)
        for (index, length) in lengths.enumerated() {
            if index > 0 { at = Self.add(at, Int64(sliceDelay)) }
            if let bytesPerSecond {
                // The piece leaves when the (simulated) wire has finished sending it.
                let transmit = Int64(length) * 1_000_000_000 / Int64(bytesPerSecond)
                at = Self.add(max(at, lastDelivery), transmit)
            }
            at = max(at, lastDelivery)
            lastDelivery = at
            slices.append(Slice(length: length, deliverAt: at))
        }
        return slices
    }

    /// The time at which something queued now (an end-of-stream marker) keeps its place after
    /// every piece already planned.
    mutating func markerTime(now: UInt64) -> UInt64 {
        lastDelivery = max(lastDelivery, now)
        return lastDelivery
    }

    static func nanoseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }

    private static func add(_ time: UInt64, _ offset: Int64) -> UInt64 {
        offset >= 0 ? time &+ UInt64(offset) : time &- min(time, UInt64(-offset))
    }

    private static func cut<R: RandomNumberGenerator>(
        _ total: Int, average: Int, variation: Int, using rng: inout R
    ) -> [Int] {
        let average = max(1, average)
        let variation = max(0, min(variation, average - 1))
        var remaining = total
        var lengths: [Int] = []
        while remaining > 0 {
            let size = variation > 0 ? Int.random(in: (average - variation)...(average + variation), using: &rng) : average
            let length = min(remaining, max(1, size))
            lengths.append(length)
            remaining -= length
        }
        return lengths
    }

    private static func cut(_ total: Int, fixed piece: Int) -> [Int] {
        var remaining = total
        var lengths: [Int] = []
        while remaining > 0 {
            let length = min(remaining, piece)
            lengths.append(length)
            remaining -= length
        }
        return lengths
    }
}
