import Synchronization

/// Makes versions that grow on this node and stay ahead of every version it has seen from others,
/// so a write made after receiving a message is ordered after that message's write, whatever
/// the wall clocks say.
///
/// While the clock is ahead of the wall clock (it observed a node whose clock ran ahead), its
/// milliseconds do not stand still until the wall clock catches up, as a textbook hybrid clock's
/// would: they advance at half the rate of monotonic time since the lead was taken. A standing
/// clock orders writes only by counters, which grow with every message heard, so a node cut off
/// from the backplane for a moment falls behind in counters and its writes of that moment (a
/// queued clear, say) lose to writes other nodes made before them. Advancing at half rate keeps
/// versions in real-time order on every node that took the same lead, and the lead still runs
/// out (in twice its length).
///
/// Versions from the wire are untrusted: a version more than `maxDrift` ahead of this node's wall
/// clock is refused, so one forged or corrupt stamp cannot drag every later write of the node
/// into the far future (or to the end of the range, where the arithmetic would overflow).
package final class HybridLogicalClock: Sendable {
    private struct State {
        var milliseconds: Int64 = 0
        var counter: UInt32 = 0
        /// When the clock last took a lead over the wall clock, and the milliseconds it took:
        /// the base its milliseconds advance from while the lead lasts. Nil while the wall
        /// clock leads.
        var lead: (milliseconds: Int64, since: CacheInstant)?
        /// The highest version `next()` has made: what this run of the node has issued.
        var highestIssued: CacheVersion?
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
            if !catchUp(&state, wall: wall) {
                if state.counter < .max {
                    state.counter += 1
                } else if state.milliseconds < .max {
                    state.milliseconds += 1
                    state.counter = 0
                }
            }
            let version = CacheVersion(milliseconds: state.milliseconds, counter: state.counter, node: node)
            state.highestIssued = version
            return version
        }
    }

    /// The highest version this clock has made, nil before the first. A version in this node's
    /// name above it was made by an earlier run of the node, however far the clock has since
    /// followed others.
    package func highestIssued() -> CacheVersion? {
        state.withLock { $0.highestIssued }
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
        let wall = clock.wallClockMilliseconds()
        state.withLock { state in
            // Compared with where the clock has got to, not where it last stood: while a lead
            // lasts the clock advances between versions, and a version heard now that is older
            // than that (a delayed or replayed message, or one from a node that took the lead
            // later) must not set this node's clock back behind versions other nodes already
            // made from the same lead.
            _ = catchUp(&state, wall: wall)
            if version.milliseconds > state.milliseconds {
                state.milliseconds = version.milliseconds
                state.counter = version.counter
                state.lead = (version.milliseconds, clock.now())
            } else if version.milliseconds == state.milliseconds, version.counter > state.counter {
                state.counter = version.counter
            }
        }
        return true
    }

    /// Moves the milliseconds up to the present: the wall clock, or while a lead lasts, where
    /// the lead has got to. Returns whether they moved (the counter then starts again at 0).
    private func catchUp(_ state: inout State, wall: Int64) -> Bool {
        var candidate = wall
        if state.lead != nil || wall <= state.milliseconds, let paced = pacedMilliseconds(&state) {
            if paced > wall { candidate = paced } else { state.lead = nil }
        }
        guard candidate > state.milliseconds else { return false }
        state.milliseconds = candidate
        state.counter = 0
        return true
    }

    /// Where the milliseconds have got to while the clock leads the wall clock: the lead's base
    /// plus half the monotonic time since. A lead not yet based (the wall clock stepped back
    /// under the clock) is based now.
    private func pacedMilliseconds(_ state: inout State) -> Int64? {
        let now = clock.now()
        guard let lead = state.lead else {
            state.lead = (state.milliseconds, now)
            return nil
        }
        let elapsed = max(Duration.zero, now - lead.since)
        return Saturating.sum(lead.milliseconds, elapsed.millisecondsClamped / 2)
    }

    /// Where the clock has got to (the latest version made or observed, or the present if it is
    /// later), without making a new one.
    package func current() -> CacheVersion {
        let wall = clock.wallClockMilliseconds()
        return state.withLock { state in
            _ = catchUp(&state, wall: wall)
            return CacheVersion(milliseconds: state.milliseconds, counter: state.counter, node: node)
        }
    }
}
