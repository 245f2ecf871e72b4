import Synchronization

/// Fans values out to any number of `AsyncStream` consumers; each `makeStream()` is a new consumer.
package final class Broadcaster<Element: Sendable>: Sendable {
    private struct State {
        var latest: Element?
        var consumers: [Int: AsyncStream<Element>.Continuation] = [:]
        var nextID = 0
        var finished = false
    }

    private let state = Mutex(State())
    /// Serializes publishers, so every consumer sees the publish order. It is a separate lock
    /// because yielding can wait for a consumer task's status lock, and a task being cancelled
    /// holds that lock while its stream's termination handler takes `state`: yielding under
    /// `state` deadlocked against a cancellation. The termination handler never takes this one.
    private let publishing = Mutex(())
    private let replayLatest: Bool
    private let bufferSize: Int

    /// - Parameters:
    ///   - replayLatest: a new consumer first receives the most recent value, and a slow consumer
    ///     keeps the newest values (states: the latest one matters most). Otherwise a slow consumer
    ///     keeps the oldest unread values and new ones are dropped (messages: order is kept up to
    ///     the gap, which the backplane detects by sequence number).
    ///   - bufferSize: values kept per slow consumer.
    package init(replayLatest: Bool, bufferSize: Int) {
        self.replayLatest = replayLatest
        self.bufferSize = max(bufferSize, 1)
    }

    package func makeStream() -> AsyncStream<Element> {
        let policy: AsyncStream<Element>.Continuation.BufferingPolicy =
            replayLatest ? .bufferingNewest(bufferSize) : .bufferingOldest(bufferSize)
        let (stream, continuation) = AsyncStream.makeStream(of: Element.self, bufferingPolicy: policy)
        let id: Int? = publishing.withLock { _ in
            let (id, latest) = state.withLock { state -> (Int?, Element?) in
                let latest = replayLatest ? state.latest : nil
                guard !state.finished else { return (nil, latest) }
                let id = state.nextID
                state.nextID += 1
                state.consumers[id] = continuation
                return (id, latest)
            }
            // Nobody awaits the new stream yet, and no publish can run in between: the latest
            // value arrives first.
            if let latest { continuation.yield(latest) }
            return id
        }
        if let id {
            continuation.onTermination = { [weak self] _ in
                _ = self?.state.withLock { $0.consumers.removeValue(forKey: id) }
            }
        } else {
            continuation.finish()
        }
        return stream
    }

    /// Delivers `element` to every consumer; returns how many consumers had to drop it.
    @discardableResult
    package func publish(_ element: Element) -> Int {
        publishing.withLock { _ in
            let consumers = state.withLock { state in
                state.latest = element
                return Array(state.consumers.values)
            }
            var dropped = 0
            for continuation in consumers {
                if case .dropped = continuation.yield(element) { dropped += 1 }
            }
            return dropped
        }
    }

    var latest: Element? { state.withLock { $0.latest } }

    package func finish() {
        publishing.withLock { _ in
            let consumers = state.withLock { state in
                state.finished = true
                defer { state.consumers = [:] }
                return state.consumers
            }
            for continuation in consumers.values { continuation.finish() }
        }
    }
}
