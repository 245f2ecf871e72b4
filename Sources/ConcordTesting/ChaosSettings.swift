import Concord
import Synchronization

/// How a chaos decorator misbehaves: fail with a probability, delay every call.
public struct ChaosSettings: Sendable {
    /// Probability in 0...1 that a call throws.
    public var failureProbability: Double = 0
    /// Added to every call, on the decorator's clock.
    public var delay: Duration = .zero

    public init(failureProbability: Double = 0, delay: Duration = .zero) {
        self.failureProbability = failureProbability
        self.delay = delay
    }
}
