/// `%XX` decoding shared by the node's key paths and Redis URLs, so both accept exactly the
/// same escapes.
package enum PercentDecoding {
    /// Decodes `%XX` escapes; nil for a truncated or non-hex escape or for invalid UTF-8.
    /// `+` stays `+`: it means a space only in form-encoded query strings.
    package static func decode<Bytes: Collection<UInt8>>(_ encoded: Bytes) -> String? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(encoded.count)
        var index = encoded.startIndex
        while index != encoded.endIndex {
            let byte = encoded[index]
            if byte == UInt8(ascii: "%") {
                let first = encoded.index(after: index)
                guard first != encoded.endIndex else { return nil }
                let second = encoded.index(after: first)
                guard second != encoded.endIndex, let high = hexValue(encoded[first]), let low = hexValue(encoded[second]) else {
                    return nil
                }
                bytes.append(high << 4 | low)
                index = encoded.index(after: second)
            } else {
                bytes.append(byte)
                index = encoded.index(after: index)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
