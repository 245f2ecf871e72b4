/// How big the workload's values are: a size fixed by the key and version alone, so a body
/// can be checked byte for byte wherever it is read. Most values are small, some are kilobytes,
/// a few come close to the node's `--max-value-bytes`.
///
/// A value is `v<version>`, then, when the size allows, `.` and a filler that depends on the
/// version: a body cut short, padded or mixed with another version's bytes does not parse.
package struct ValueSizes: Sendable, Hashable {
    /// The largest value; zero gives every value its minimal `v<version>` form.
    package var maxBytes: Int
    /// Share of values between 256 bytes and 16 KiB.
    package var mediumShare: Double = 0.09
    /// Share of values between 16 KiB and `maxBytes`.
    package var largeShare: Double = 0.01

    package init(maxBytes: Int) {
        self.maxBytes = maxBytes
    }

    /// Every value as short as it can be (`v<version>`).
    package static let compact = ValueSizes(maxBytes: 0)

    /// The size of `key`'s value at `version`.
    package func size(key: String, version: Int64) -> Int {
        guard maxBytes > 0 else { return 0 }
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in key.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3 }
        withUnsafeBytes(of: version.littleEndian) { bytes in
            for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3 }
        }
        let draw = Double(hash % 1_000_000) / 1_000_000
        let spread = hash >> 20
        func within(_ low: Int, _ high: Int) -> Int {
            let high = min(high, maxBytes)
            guard high > low else { return min(low, maxBytes) }
            return low + Int(spread % UInt64(high - low + 1))
        }
        if draw < largeShare { return within(16 << 10, maxBytes) }
        if draw < largeShare + mediumShare { return within(256, 16 << 10) }
        return within(2, 256)
    }

    /// The body of `key`'s value at `version`.
    package func value(key: String, version: Int64) -> [UInt8] {
        var bytes = Array("v\(version)".utf8)
        let size = size(key: key, version: version)
        guard size > bytes.count + 1 else { return bytes }
        bytes.reserveCapacity(size)
        bytes.append(UInt8(ascii: "."))
        let shift = Int(UInt64(bitPattern: version) % 26)
        for index in 0..<(size - bytes.count) {
            bytes.append(UInt8(ascii: "a") + UInt8((index + shift) % 26))
        }
        return bytes
    }

    /// The version a body of `key` encodes; nil unless the body is exactly that version's value.
    package func version(of body: [UInt8], key: String) -> Int64? {
        var end = body.firstIndex(of: UInt8(ascii: ".")) ?? body.endIndex
        if end == body.startIndex { end = body.endIndex }
        guard let version = OriginStore.version(of: Array(body[..<end])) else { return nil }
        return body == value(key: key, version: version) ? version : nil
    }
}
