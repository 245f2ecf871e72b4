/// What the backplane transport reports to the cache.
public enum BackplaneEvent: Sendable {
    /// The subscription is live again; messages from now on will be delivered. The cache
    /// replays what it missed from the log.
    case subscribed
    /// The subscription is lost.
    case disconnected(reason: String)
    /// A raw message from the channel, undecoded: the cache decodes and validates it.
    case message([UInt8])
}
