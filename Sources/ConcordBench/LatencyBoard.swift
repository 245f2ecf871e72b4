import Synchronization

/// Records when each of a batch of writes was sent and when each receiver saw it, for the
/// propagation suite. Receivers call `arrived` from their event loops; only keys of the batch
/// being measured count, so stragglers of earlier phases are ignored.
final class LatencyBoard: Sendable {
    private struct State {
        var receivers = 0
        var indexOfKey: [String: Int] = [:]
        var sent: [UInt64] = []
        /// `write * receivers + receiver`; zero until seen.
        var arrival: [UInt64] = []
        var arrivedCount = 0
    }

    private let state = Mutex(State())

    /// Starts a batch of `writes` writes seen by `receivers` receivers.
    func begin(writes: Int, receivers: Int) {
        state.withLock { state in
            state = State()
            state.receivers = receivers
            state.sent = [UInt64](repeating: 0, count: writes)
            state.arrival = [UInt64](repeating: 0, count: writes * receivers)
        }
    }

    /// Marks write `index` (under `key`) as sent now; call just before sending it.
    func send(_ index: Int, key: String) {
        let now = BenchClock.nanoseconds()
        state.withLock { state in
            state.sent[index] = now
            state.indexOfKey[key] = index
        }
    }

    /// Receiver `receiver` has just seen `key`.
    @inline(__always)
    func arrived(_ key: String, receiver: Int) {
        let now = BenchClock.nanoseconds()
        state.withLock { state in
            guard let index = state.indexOfKey[key] else { return }
            let slot = index * state.receivers + receiver
            guard state.arrival[slot] == 0 else { return }
            state.arrival[slot] = now
            state.arrivedCount += 1
        }
    }

    var arrivedCount: Int { state.withLock { $0.arrivedCount } }

    /// Nanoseconds from send to arrival for every arrival, and how many never arrived.
    func latencies() -> (nanoseconds: [UInt64], missing: Int) {
        state.withLock { state in
            var latencies: [UInt64] = []
            latencies.reserveCapacity(state.arrival.count)
            var missing = 0
            for (slot, arrival) in state.arrival.enumerated() {
                let sent = state.sent[slot / max(1, state.receivers)]
                if arrival == 0 || sent == 0 {
                    missing += 1
                } else {
                    latencies.append(arrival &- sent)
                }
            }
            return (latencies, missing)
        }
    }
}
