/// One fault of a schedule: what, on which nodes, when (from the workload's start) and for how long.
package struct ScheduledFault: Sendable, Hashable, CustomStringConvertible {
    package var kind: FaultKind
    /// Node indices (0-based) the fault acts on; empty for faults on Redis or on every link; for a
    /// memcached fault, the one server index it acts on.
    package var targets: [Int]
    /// Offset from the start of the workload.
    package var start: Duration
    /// How long the fault is held before its heal; zero for instant faults.
    package var hold: Duration
    /// The added delay for `latency`, the connection lifetime for `reset`, the clock offset for
    /// `clock-skew`; nil otherwise.
    package var magnitude: Duration?

    package init(kind: FaultKind, targets: [Int], start: Duration, hold: Duration, magnitude: Duration? = nil) {
        self.kind = kind
        self.targets = targets
        self.start = start
        self.hold = hold
        self.magnitude = magnitude
    }

    /// When the heal is due, as an offset from the start of the workload.
    package var healAt: Duration { start + hold }

    package var description: String {
        var text = "\(start.shortDescription) \(kind)"
        if kind.targetsMemcached {
            text += " on " + targets.map { "memcached server \($0 + 1)" }.joined(separator: ",")
        } else if !targets.isEmpty {
            text += " on " + targets.map { "n\($0 + 1)" }.joined(separator: ",")
        }
        if let magnitude { text += " (\(magnitude.shortDescription))" }
        if hold > .zero { text += " for \(hold.shortDescription)" }
        return text
    }
}

/// A random but reproducible sequence of faults: the same seed and parameters always give the
/// same kinds, targets, times and magnitudes. Faults never overlap, and each heal is followed by
/// a healthy period at least `healthyGap` long, so convergence after it can be measured alone.
package struct FaultSchedule: Sendable, Hashable {
    /// What the schedule is drawn from.
    package struct Parameters: Sendable, Hashable {
        /// The kinds to inject; each appears once, in random order, before any repeats.
        package var kinds: [FaultKind]
        package var nodeCount: Int
        /// The length of the workload; no fault's healthy period runs past it.
        package var span: Duration
        /// Healthy time before the first fault, so every node has warm L1 entries to lose.
        package var warmup: Duration = .seconds(3)
        /// How long a held fault lasts.
        package var hold: ClosedRange<Duration> = .seconds(3) ... .seconds(6)
        /// The least healthy time after a heal; at least the convergence bound.
        package var healthyGap: Duration = .seconds(5)
        /// Up to this much is added to each healthy period, so faults do not fall into a rhythm.
        package var gapJitter: Duration = .seconds(2)
        /// The added delay of a latency spike.
        package var latency: ClosedRange<Duration> = .milliseconds(150) ... .milliseconds(400)
        /// How long a connection lives before it is reset, under `reset`.
        package var resetAfter: ClosedRange<Duration> = .milliseconds(200) ... .milliseconds(800)
        /// How far ahead a node's wall clock runs, under `clock-skew`: tens of seconds, within
        /// the nodes' default `maxClockDrift` (1 minute).
        package var clockSkew: ClosedRange<Duration> = .seconds(20) ... .seconds(40)
        /// Memcached servers a memcached fault picks one of.
        package var memcachedServerCount: Int = 2

        package init(kinds: [FaultKind], nodeCount: Int, span: Duration) {
            self.kinds = kinds
            self.nodeCount = nodeCount
            self.span = span
        }
    }

    package let seed: UInt64
    package let parameters: Parameters
    package let faults: [ScheduledFault]

    package init(seed: UInt64, parameters: Parameters) {
        self.seed = seed
        self.parameters = parameters
        self.faults = Self.draw(seed: seed, parameters: parameters)
    }

    private static func draw(seed: UInt64, parameters: Parameters) -> [ScheduledFault] {
        guard !parameters.kinds.isEmpty, parameters.nodeCount > 0 else { return [] }
        var random = SeededGenerator(seed: seed)
        var faults: [ScheduledFault] = []
        var bag: [FaultKind] = []
        var time = parameters.warmup
        while true {
            if bag.isEmpty { bag = parameters.kinds.shuffled(using: &random) }
            let kind = bag.removeFirst()
            let hold = kind.isInstant ? .zero : random.duration(in: parameters.hold)
            let targets = kind.targetsMemcached
                ? [Int.random(in: 0..<max(1, parameters.memcachedServerCount), using: &random)]
                : Self.targets(for: kind, nodeCount: parameters.nodeCount, random: &random)
            let magnitude: Duration? = switch kind {
            case .latency: random.duration(in: parameters.latency)
            case .reset: random.duration(in: parameters.resetAfter)
            case .clockSkew: random.duration(in: parameters.clockSkew)
            default: nil
            }
            let gap = parameters.healthyGap + random.duration(in: .zero ... parameters.gapJitter)
            // The fault and the healthy period after it must both fit.
            guard time + hold + parameters.healthyGap <= parameters.span else { break }
            faults.append(ScheduledFault(kind: kind, targets: targets, start: time, hold: hold, magnitude: magnitude))
            time += hold + gap
        }
        return faults
    }

    private static func targets(for kind: FaultKind, nodeCount: Int, random: inout SeededGenerator) -> [Int] {
        switch kind {
        case .partitionOne, .partitionDeaf, .partitionMute, .blackholeOne, .blackholeDeaf, .nodeKill, .clockSkew:
            return [Int.random(in: 0..<nodeCount, using: &random)]
        case .partitionHalf:
            let count = max(1, nodeCount / 2)
            return Array(Array(0..<nodeCount).shuffled(using: &random).prefix(count)).sorted()
        case .partitionAll, .latency, .reset:
            return Array(0..<nodeCount)
        case .redisKill, .redisRestartEmpty, .redisPause, .flushall, .redisEvict, .redisRollback, .forge,
             .memcachedKill, .memcachedPause, .memcachedPartition, .memcachedFlush,
             .failover, .masterKill, .replicaLag, .slotMigrate, .shardFailover, .primaryKill:
            return []
        }
    }
}
