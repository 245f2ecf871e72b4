import Synchronization

/// Makes versions that grow on this node and stay ahead of every version it has seen from others,
/// so a write made after receiving a message is ordered after that message's write, whatever
/// the wall clocks say.
package final class HybridLogicalClock: Sendable {
    private struct State {
        var milliseconds: Int64 = 0
        var counter: UInt32 = 0
    }

    package let node: String
    private let clock: any CacheClock
    private let state = Mutex(State())

    package init(node: String, clock: any CacheClock) {
        self.node = node
        self.clock = clock
    }

    /// A new version, greater than every version made or observed before.
    package func next() -> CacheVersion {
        let wall = clock.wallClockMilliseconds()
        return state.withLock { state in
            if wall > state.milliseconds {
                state.milliseconds = wall
                state.counter = 0
            } else if state.counter == .max {
                state.milliseconds += 1
                state.counter = 0
            } else {
                state.counter += 1
            }
            return CacheVersion(milliseconds: state.milliseconds, counter: state.counter, node: node)
        }
    }

    /// Moves the clock past a version received from another node.
    package func observe(_ version: CacheVersion) {
        state.withLock { state in
            if version.milliseconds > state.milliseconds {
                state.milliseconds = version.milliseconds
                state.counter = version.counter
            } else if version.milliseconds == state.milliseconds, version.counter > state.counter {
                state.counter = version.counter
            }
        }
    }

    /// The latest version made or observed, without making a new one.
    package func current() -> CacheVersion {
        state.withLock { CacheVersion(milliseconds: $0.milliseconds, counter: $0.counter, node: node) }
    }
}
