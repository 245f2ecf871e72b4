/// A message received on a subscribed channel, or on a channel matching a subscribed pattern.
public struct RedisPubSubMessage: Sendable, Hashable {
    public var channel: String
    public var payload: [UInt8]
    /// The pattern that matched, for messages received through `psubscribe`.
    public var pattern: String?

    public init(channel: String, payload: [UInt8], pattern: String? = nil) {
        self.channel = channel
        self.payload = payload
        self.pattern = pattern
    }

    /// The payload decoded as UTF-8.
    public var payloadString: String { String(decoding: payload, as: UTF8.self) }

    /// Whether the message came through a sharded subscription (`SSUBSCRIBE`).
    public var isSharded = false

    /// Recognises RESP2 push replies: `message channel payload`, `smessage channel payload` and `pmessage pattern channel payload`.
    init?(push value: RESPValue) {
        guard case .array(let items) = value, items.count >= 3, case .bulkString(let kind) = items[0] else {
            return nil
        }
        if kind == Self.message, items.count == 3, let channel = items[1].string, case .bulkString(let payload) = items[2] {
            self.init(channel: channel, payload: payload)
        } else if kind == Self.smessage, items.count == 3, let channel = items[1].string, case .bulkString(let payload) = items[2] {
            self.init(channel: channel, payload: payload)
            isSharded = true
        } else if kind == Self.pmessage, items.count == 4, let pattern = items[1].string, let channel = items[2].string,
            case .bulkString(let payload) = items[3]
        {
            self.init(channel: channel, payload: payload, pattern: pattern)
        } else {
            return nil
        }
    }

    /// `sunsubscribe channel count`: a sharded subscription ended.
    static func isShardUnsubscribe(_ value: RESPValue) -> Bool {
        guard case .array(let items) = value, items.count == 3, case .bulkString(let kind) = items[0] else { return false }
        return kind == sunsubscribe
    }

    private static let message = Array("message".utf8)
    private static let smessage = Array("smessage".utf8)
    private static let sunsubscribe = Array("sunsubscribe".utf8)
    private static let pmessage = Array("pmessage".utf8)
}
