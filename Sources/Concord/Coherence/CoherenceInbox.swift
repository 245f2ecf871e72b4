import Synchronization

/// The coherence loop's queue of inputs, with a gate that lets a backplane message be handled
/// where it arrives (on the subscriber's event loop) while the loop has nothing queued and
/// nothing in hand.
///
/// Handing every message to the loop's task cost a thread wake-up per message and per node,
/// the largest share of a receiver's part of propagation. A message handled at once cannot
/// overtake an earlier input (none is waiting), and the loop cannot start on a later one
/// meanwhile: it takes inputs only through `send`, which waits for the gate, and counts an
/// input as done only after handling it in full (`finished`).
final class CoherenceInbox: Sendable {
    let inputs: AsyncStream<HybridCache.CoherenceInput>
    private let continuation: AsyncStream<HybridCache.CoherenceInput>.Continuation
    /// Inputs sent to the loop and not yet finished by it.
    private let unfinished = Mutex(0)

    init() {
        (inputs, continuation) = AsyncStream.makeStream()
    }

    /// Queues `input` for the loop.
    func send(_ input: HybridCache.CoherenceInput) {
        unfinished.withLock { $0 += 1 }
        continuation.yield(input)
    }

    /// When the loop has nothing queued or in hand, runs `handle` under the gate and returns
    /// true; `handle` returns nil when it dealt with the input, or what the loop must take
    /// instead (queued before the gate opens, so nothing can overtake it). Returns false without
    /// running `handle` while the loop has work: the caller then sends the input.
    /// `handle` must not block or call back into this inbox.
    func handleIfIdle(_ handle: () -> HybridCache.CoherenceInput?) -> Bool {
        var forLoop: HybridCache.CoherenceInput?
        let ran = unfinished.withLock { count in
            guard count == 0 else { return false }
            forLoop = handle()
            if forLoop != nil { count += 1 }
            return true
        }
        if let forLoop { continuation.yield(forLoop) }
        return ran
    }

    /// The loop finished handling one input it took from `inputs`.
    func finished() {
        unfinished.withLock { $0 -= 1 }
    }
}
