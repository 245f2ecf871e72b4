import NIOCore

/// One meta-protocol request (`mg`, `ms`, `md`, `mn`) or a plain administrative command, ready to
/// encode. Flags are the protocol's single-letter tokens, e.g. `v`, `c`, `T30`, `C12345`, `q`, `O7`.
public struct MetaCommand: Sendable, Equatable {
    /// The verb on the wire.
    public enum Verb: String, Sendable {
        case get = "mg"
        case set = "ms"
        case delete = "md"
        case noop = "mn"
        /// `flush_all`: drops every item on the server.
        case flushAll = "flush_all"
        /// `version`: the server's version string.
        case version = "version"
    }

    /// How `ms` stores, the `M` flag.
    public enum SetMode: String, Sendable {
        /// Store unconditionally (the default).
        case set = "S"
        /// Store only when the key is absent.
        case add = "E"
        /// Store only when the key is present.
        case replace = "R"
    }

    public var verb: Verb
    public var key: String
    public var flags: [String]
    /// The value of an `ms`.
    public var data: [UInt8]

    public init(_ verb: Verb, key: String = "", flags: [String] = [], data: [UInt8] = []) {
        self.verb = verb
        self.key = key
        self.flags = flags
        self.data = data
    }

    /// `mg key v c f`: value, CAS token and client flags (plus `extra` flags).
    public static func get(_ key: String, extra: [String] = []) -> Self {
        .init(.get, key: key, flags: ["v", "c", "f"] + extra)
    }

    /// `ms key <len> T<ttl> [C<cas>] [M<mode>] c`; the reply carries the new CAS token.
    public static func set(_ key: String, value: [UInt8], timeToLiveSeconds: Int, cas: UInt64? = nil, mode: SetMode = .set, extra: [String] = []) -> Self {
        var flags = ["T\(timeToLiveSeconds)", "c"]
        if let cas { flags.append("C\(cas)") }
        if mode != .set { flags.append("M\(mode.rawValue)") }
        return .init(.set, key: key, flags: flags + extra, data: value)
    }

    /// `md key [C<cas>]`.
    public static func delete(_ key: String, cas: UInt64? = nil, extra: [String] = []) -> Self {
        var flags: [String] = []
        if let cas { flags.append("C\(cas)") }
        return .init(.delete, key: key, flags: flags + extra)
    }

    /// Whether the command names a key (and so must carry a valid one).
    var hasKey: Bool { verb == .get || verb == .set || verb == .delete }

    /// Writes the command's bytes.
    func encode(into buffer: inout ByteBuffer) {
        buffer.writeString(verb.rawValue)
        if hasKey {
            buffer.writeInteger(UInt8(ascii: " "))
            buffer.writeString(key)
        }
        if verb == .set {
            buffer.writeInteger(UInt8(ascii: " "))
            buffer.writeString(String(data.count))
        }
        for flag in flags {
            buffer.writeInteger(UInt8(ascii: " "))
            buffer.writeString(flag)
        }
        buffer.writeStaticString("\r\n")
        if verb == .set {
            buffer.writeBytes(data)
            buffer.writeStaticString("\r\n")
        }
    }

    /// Memcached's key rule: 1 to 250 bytes, no spaces or control characters. Checked before
    /// sending, because a bad key would desynchronize the text protocol.
    public static func validate(key: String) throws(MemcachedError) {
        let utf8 = key.utf8
        guard !utf8.isEmpty else { throw MemcachedError(.invalidKey, "a memcached key cannot be empty") }
        guard utf8.count <= maxKeyLength else {
            throw MemcachedError(.invalidKey, "a memcached key has at most \(maxKeyLength) bytes; this one has \(utf8.count)")
        }
        for byte in utf8 where byte <= 0x20 || byte == 0x7F {
            throw MemcachedError(.invalidKey, "a memcached key cannot contain spaces or control characters (byte \(byte))")
        }
    }

    /// The longest key memcached accepts.
    public static let maxKeyLength = 250

    /// Flags are single tokens: one letter, then no spaces or control characters.
    static func validate(flag: String) throws(MemcachedError) {
        guard let first = flag.utf8.first, (0x41...0x5A).contains(first) || (0x61...0x7A).contains(first),
              !flag.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7F })
        else { throw MemcachedError(.client, "'\(flag)' is not a meta-protocol flag") }
    }
}
