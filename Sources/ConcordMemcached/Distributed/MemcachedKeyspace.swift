/// The memcached keys of one cache: `concord:<cache>:e:<key>` for entries, `:t:<tag>` for tag
/// markers, `:clear` for the clear marker and `:gen` for each server's generation.
///
/// A key that memcached cannot take as is (over 250 bytes with the prefix, spaces, control
/// characters) is stored under the MD5 of its name; the record names its owner, so a collision
/// reads as a miss, never as another key's value.
struct MemcachedKeyspace: Sendable {
    let prefix: String

    init(cacheName: String) {
        let safe = cacheName.utf8.allSatisfy { $0 > 0x20 && $0 != 0x7F } && cacheName.utf8.count <= 64
        prefix = "concord:" + (safe ? cacheName : "h" + Self.hex(MD5.digest(Array(cacheName.utf8))))
    }

    /// The key of the server's generation marker.
    var generation: String { prefix + ":gen" }

    /// The names of an entry, a tag marker and the clear marker, before the prefix.
    func entry(_ key: String) -> String { "e:" + key }
    func tag(_ tag: String) -> String { "t:" + tag }
    var clear: String { "clear" }

    /// The memcached key for `name`; it is also what ketama hashes, so every client agrees
    /// where it lives.
    func stored(_ name: String) -> String {
        let full = prefix + ":" + name
        if full.utf8.count <= MetaCommand.maxKeyLength, full.utf8.allSatisfy({ $0 > 0x20 && $0 != 0x7F }) {
            return full
        }
        return prefix + ":h:" + Self.hex(MD5.digest(Array(name.utf8)))
    }

    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        for byte in bytes {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0xF)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}
