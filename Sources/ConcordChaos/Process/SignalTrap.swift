import Dispatch
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Catches SIGINT and SIGTERM so a harness can stop its children before it exits: the first
/// signal is delivered to `next()` (to cancel the run), any later one calls the last-resort
/// handler (to SIGKILL everything and exit), for when the orderly shutdown is itself stuck.
package final class SignalTrap: Sendable {
    private let signals: AsyncStream<Int32>
    private let continuation: AsyncStream<Int32>.Continuation
    private let sources: SourceBox
    private let handling = Handling()

    package init(_ numbers: [Int32] = [SIGINT, SIGTERM]) {
        let (signals, continuation) = AsyncStream<Int32>.makeStream()
        self.signals = signals
        self.continuation = continuation
        var sources: [any DispatchSourceSignal] = []
        let handling = self.handling
        for number in numbers {
            // The default action would end the process before the children are stopped.
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                let count = handling.delivered.wrappingAdd(1, ordering: .relaxed).newValue
                if count > 1, let handler = handling.lastResort.withLock({ $0 }) {
                    handler(number)
                } else {
                    continuation.yield(number)
                }
            }
            source.resume()
            sources.append(source)
        }
        self.sources = SourceBox(sources)
    }

    deinit {
        for source in sources.sources { source.cancel() }
        continuation.finish()
    }

    /// The first signal; nil if the waiting task is cancelled first. Call from one task only.
    package func next() async -> Int32? {
        var iterator = signals.makeAsyncIterator()
        return await iterator.next()
    }

    /// What a second signal does.
    package func onRepeatedSignal(_ handler: @escaping @Sendable (Int32) -> Void) {
        handling.lastResort.withLock { $0 = handler }
    }
}

/// What the signal handlers share: how many signals came, and the last-resort handler.
private final class Handling: Sendable {
    let lastResort = Mutex<(@Sendable (Int32) -> Void)?>(nil)
    let delivered = Atomic<Int>(0)
}

/// Dispatch sources are thread-safe but not marked Sendable; this box only keeps them alive.
private final class SourceBox: @unchecked Sendable {
    let sources: [any DispatchSourceSignal]
    init(_ sources: [any DispatchSourceSignal]) { self.sources = sources }
}
