/// Redis Cluster's key → slot function: CRC16 (XMODEM) of the key's hash tag, modulo 16384.
///
/// The hash tag is the text between the first `{` and the next `}` when it is not empty, so
/// every key of a cache (`concord:{cacheName}:…`) lands on one slot.
public enum ClusterHashSlot {
    /// Slots in a Redis Cluster.
    public static let count = 16_384

    /// The slot of `key`.
    public static func slot(of key: some Collection<UInt8>) -> Int {
        Int(crc16(hashTag(of: key)) & 0x3FFF)
    }

    /// The slot of a textual key.
    public static func slot(of key: String) -> Int {
        slot(of: Array(key.utf8))
    }

    /// The part of `key` that is hashed: the non-empty text between the first `{` and the next `}`, or the whole key.
    static func hashTag<Key: Collection<UInt8>>(of key: Key) -> Key.SubSequence {
        guard let open = key.firstIndex(of: UInt8(ascii: "{")) else { return key[...] }
        let afterOpen = key.index(after: open)
        guard let close = key[afterOpen...].firstIndex(of: UInt8(ascii: "}")), close != afterOpen else { return key[...] }
        return key[afterOpen..<close]
    }

    /// CRC16-CCITT (XMODEM): polynomial 0x1021, initial value 0, as Redis Cluster specifies.
    static func crc16(_ bytes: some Sequence<UInt8>) -> UInt16 {
        var crc: UInt16 = 0
        for byte in bytes {
            crc = (crc << 8) ^ table[Int(((crc >> 8) ^ UInt16(byte)) & 0xFF)]
        }
        return crc
    }

    private static let table: [UInt16] = (0..<256).map { index in
        var value = UInt16(index) << 8
        for _ in 0..<8 {
            value = value & 0x8000 != 0 ? (value << 1) ^ 0x1021 : value << 1
        }
        return value
    }
}
