/// Carries invalidations between nodes: Redis pub/sub plus the invalidation log in
/// `RedisBackplane`, a shared in-process bus in `ConcordTesting`.
public protocol Backplane: Sendable {
    /// Announces a mutation that no L2 write carries (no L2, or L2 skipped): appends it to the
    /// log and publishes it atomically. Returns its sequence number.
    func publish(_ mutation: CacheMutation) async throws -> UInt64


    /// The current epoch and last sequence number (creates the epoch if there is none).
    func head() async throws -> BackplaneHead

    /// The logged messages with sequence numbers `from...through`.
    func readLog(from: UInt64, through: UInt64) async throws -> BackplaneLogRead

    /// Background work (the subscriber connection), reporting the transport's events to `events`
    /// until it returns. The cache runs it inside its own `run()`. `events` may be called from an
    /// I/O thread and never blocks, so a message reaches the cache's coherence loop with one
    /// hand-off and no forwarding task in between.
    func run(events: BackplaneEventSink) async throws

    /// Checks the tags of messages and log entries when a backplane key is configured; nil when
    /// messages are not signed. The cache ignores (and counts) a message it rejects.
    var messageAuthenticator: (any MessageAuthenticator)? { get }

    /// Whether the cache may publish through this backplane while its `run()` is not active.
    /// False by default: a backplane whose connections `run(events:)` drives fails until then.
    var isUsableWithoutRun: Bool { get }
}

extension Backplane {
    public var messageAuthenticator: (any MessageAuthenticator)? { nil }
    public var isUsableWithoutRun: Bool { false }
}
