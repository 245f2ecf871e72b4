/// The harness's one monotonic timeline: every operation and fault is stamped as time since the
/// harness started, so stamps taken on different tasks compare directly.
package struct HarnessClock: Sendable {
    package let origin: ContinuousClock.Instant

    package init(origin: ContinuousClock.Instant = .now) {
        self.origin = origin
    }

    package func now() -> Duration {
        ContinuousClock.now - origin
    }
}
