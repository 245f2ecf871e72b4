/// A decoded RESP2 reply, converted from hiredis's reply tree into plain Swift values.
public enum RESPValue: Sendable, Hashable {
    /// `+OK` style status reply.
    case simpleString(String)
    /// `-ERR ...` error reply. A top-level error reply is thrown as `RedisError(.server)` by the client;
    /// this case appears for errors nested in arrays (e.g. inside an `EXEC` result).
    case error(String)
    /// `:42` integer reply.
    case integer(Int64)
    /// `$n` bulk string, binary-safe.
    case bulkString([UInt8])
    /// Nil bulk string (`$-1`) or nil array (`*-1`).
    case null
    /// `*n` array, possibly nested.
    case array([RESPValue])
}

extension RESPValue {
    /// The bytes of a bulk or simple string, nil otherwise.
    public var bytes: [UInt8]? {
        switch self {
        case .bulkString(let bytes): bytes
        case .simpleString(let string): Array(string.utf8)
        default: nil
        }
    }

    /// A bulk or simple string decoded as UTF-8 (invalid sequences repaired), or an integer's decimal form.
    public var string: String? {
        switch self {
        case .bulkString(let bytes): String(decoding: bytes, as: UTF8.self)
        case .simpleString(let string): string
        case .integer(let value): String(value)
        default: nil
        }
    }

    /// An integer reply, or a bulk/simple string holding a decimal integer.
    public var int: Int64? {
        switch self {
        case .integer(let value): value
        case .bulkString(let bytes): Int64(String(decoding: bytes, as: UTF8.self))
        case .simpleString(let string): Int64(string)
        default: nil
        }
    }

    /// The elements of an array reply.
    public var array: [RESPValue]? {
        if case .array(let values) = self { return values }
        return nil
    }

    /// True for a nil bulk string or nil array.
    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }
}

extension RESPValue: CustomStringConvertible {
    public var description: String {
        switch self {
        case .simpleString(let string): "+\(string)"
        case .error(let message): "-\(message)"
        case .integer(let value): ":\(value)"
        case .bulkString(let bytes): "\"\(String(decoding: bytes, as: UTF8.self))\""
        case .null: "(nil)"
        case .array(let values): "[\(values.map(\.description).joined(separator: ", "))]"
        }
    }
}
