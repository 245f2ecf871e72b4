/// Where a backplane reports its events: a non-blocking callback into the cache's coherence loop.
public struct BackplaneEventSink: Sendable {
    private let deliver: @Sendable (BackplaneEvent) -> Void

    public init(_ deliver: @escaping @Sendable (BackplaneEvent) -> Void) {
        self.deliver = deliver
    }

    /// Hands `event` to the cache; returns at once. The cache may apply a message within the
    /// call (locks and L1 only, no I/O), so a backplane calls it from its receiving thread
    /// rather than from a task made for each message.
    public func callAsFunction(_ event: BackplaneEvent) {
        deliver(event)
    }
}
