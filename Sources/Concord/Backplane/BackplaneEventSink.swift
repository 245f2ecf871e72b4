/// Where a backplane reports its events: a non-blocking callback into the cache's coherence loop.
public struct BackplaneEventSink: Sendable {
    private let deliver: @Sendable (BackplaneEvent) -> Void

    public init(_ deliver: @escaping @Sendable (BackplaneEvent) -> Void) {
        self.deliver = deliver
    }

    /// Hands `event` to the cache; returns at once.
    public func callAsFunction(_ event: BackplaneEvent) {
        deliver(event)
    }
}
