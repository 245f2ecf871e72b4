import Synchronization

/// Makes versions that grow on this node and stay ahead of every version it has seen from others,
/// so a write made after receiving a message is ordered after that message's write, whatever
/// the wall clocks say.
///
/// Versions from the wire are untrusted: a version more than `maxDrift` ahead of this node's wall
/// clock is refused, so one forged or corrupt stamp cannot drag every later write of the node
/// into the far future (or to the end of the range, where the arithmetic would overflow).
package final class HybridLogicalClock: Sendable {
    private struct State {
        var milliseconds: Int64 = 0
        var counter: UInt32 = 0
    }

    package let node: String
    /// How far ahead of the wall clock an observed version may be.
    package let maxDrift: Duration
    private let clock: any CacheClock
    private let state = Mutex(State())

    package init(node: String, clock: any CacheClock, maxDrift: Duration = HybridCacheConfiguration.defaultMaxClockDrift) {
        self.node = node
        self.clock = clock
        self.maxDrift = maxDrift
    }

    /// A new version, greater than every version made or observed before (at the very end of the
    /// `Int64` range, which no accepted version reaches, it stays there instead of trapping).
    package func next() -> CacheVersion {
        let wall = clock.wallClockMilliseconds()
        return state.withLock { state in
            if wall > state.milliseconds {
                state.milliseconds = wall
                state.counter = 0
            } else if state.counter < .max {
                state.counter += 1
            } else if state.milliseconds < .max {
                state.milliseconds += 1
                state.counter = 0
            }
            return CacheVersion(milliseconds: state.milliseconds, counter: state.counter, node: node)
        }
    }

    /// Whether `version` is within `maxDrift` of this node's wall clock (not too far ahead).
    package func isWithinDrift(_ version: CacheVersion) -> Bool {
        let limit = Saturating.sum(clock.wallClockMilliseconds(), maxDrift.millisecondsClamped)
        return version.milliseconds <= limit
    }

    /// Moves the clock past a version received from another node. Returns false, and leaves the
    /// clock alone, for a version more than `maxDrift` ahead of the wall clock.
    @discardableResult
    package func observe(_ version: CacheVersion) -> Bool {
        guard isWithinDrift(version) else { return false }
        state.withLock { state in
            if version.milliseconds > state.milliseconds {
                state.milliseconds = version.milliseconds
                state.counter = version.counter
            } else if version.milliseconds == state.milliseconds, version.counter > state.counter {
                state.counter = version.counter
            }
        }
        return true
    }

    /// The latest version made or observed, without making a new one.
    package func current() -> CacheVersion {
        state.withLock { CacheVersion(milliseconds: $0.milliseconds, counter: $0.counter, node: node) }
    }
}
