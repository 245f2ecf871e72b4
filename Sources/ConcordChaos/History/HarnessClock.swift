/// The harness's one monotonic timeline: every operation and fault is stamped as time since the
/// harness started, so stamps taken on different tasks compare directly.
public struct HarnessClock: Sendable {
    public let origin: ContinuousClock.Instant

    public init(origin: ContinuousClock.Instant = .now) {
        self.origin = origin
    }

    public func now() -> Duration {
        ContinuousClock.now - origin
    }
}
