import Concord

/// How cache keys map to request paths. The key is everything after `/v1/cache/` in the raw
/// path, percent-decoded as a whole: `/v1/cache/user/42` and `/v1/cache/user%2F42` both name
/// the key `user/42`. Clients should percent-encode every byte outside `A-Z a-z 0-9 - . _ ~`
/// (then no key is ambiguous, whatever it contains); `?`, `#` and `%` in a key must be encoded.
public enum CacheKeyPath {
    /// The path prefix of the cache routes.
    public static let prefix = "/v1/cache/"

    /// The key a raw (still percent-encoded) request path names. Throws a 400 for a path
    /// without the prefix, an empty key, a malformed `%` escape or bytes that are not UTF-8.
    public static func key(fromRawPath path: String) throws(NodeAPIError) -> String {
        try key(fromRawPath: path, prefix: prefix)
    }

    /// The key a raw path names under another cache's `prefix` (`/v1/caches/NAME/cache/`).
    public static func key(fromRawPath path: String, prefix: String) throws(NodeAPIError) -> String {
        guard path.hasPrefix(prefix) else {
            throw NodeAPIError.invalidKey("the key is empty; use \(prefix)KEY")
        }
        let encoded = path.utf8.dropFirst(prefix.utf8.count)
        guard !encoded.isEmpty else { throw NodeAPIError.invalidKey("the key is empty; use \(prefix)KEY") }
        guard let key = PercentDecoding.decode(encoded) else {
            throw NodeAPIError.invalidKey("the key is not valid percent-encoded UTF-8")
        }
        return key
    }

    /// The path for a key, every byte outside the unreserved set percent-encoded.
    public static func path(for key: String) -> String {
        prefix + percentEncode(key)
    }

    /// `%XX` escapes of every byte but RFC 3986's unreserved characters.
    public static func percentEncode(_ text: String) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        let hex = Array("0123456789ABCDEF".utf8)
        for byte in text.utf8 {
            if isUnreserved(byte) {
                bytes.append(byte)
            } else {
                bytes.append(UInt8(ascii: "%"))
                bytes.append(hex[Int(byte >> 4)])
                bytes.append(hex[Int(byte & 0x0F)])
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func isUnreserved(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        case UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
            true
        default:
            false
        }
    }
}
