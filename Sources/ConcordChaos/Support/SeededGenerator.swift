/// A small deterministic random number generator (SplitMix64), so one `--seed` always gives the
/// same fault schedule and workload choices; the standard library's generator cannot be seeded.
struct SeededGenerator: RandomNumberGenerator, Sendable, Hashable {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    /// A generator for a sub-stream (one workload task, say), independent of the others but
    /// still fixed by the run's seed.
    init(seed: UInt64, stream: UInt64) {
        var mixer = SeededGenerator(seed: seed ^ (stream &* 0x9E37_79B9_7F4A_7C15))
        state = mixer.next()
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A duration drawn uniformly from `range`, at millisecond granularity (what schedules need,
    /// and what keeps them printable).
    mutating func duration(in range: ClosedRange<Duration>) -> Duration {
        let low = Int64(range.lowerBound.milliseconds.rounded())
        let high = Int64(range.upperBound.milliseconds.rounded())
        guard high > low else { return .milliseconds(low) }
        return .milliseconds(Int64.random(in: low...high, using: &self))
    }
}
