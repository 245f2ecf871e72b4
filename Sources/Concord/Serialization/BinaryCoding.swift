/// Appends big-endian fields to a byte array.
struct BinaryWriter {
    var bytes: [UInt8] = []

    init(capacity: Int = 64) { bytes.reserveCapacity(capacity) }

    mutating func write(_ value: UInt8) { bytes.append(value) }

    mutating func write<Integer: FixedWidthInteger>(_ value: Integer) {
        withUnsafeBytes(of: value.bigEndian) { bytes.append(contentsOf: $0) }
    }

    mutating func write(_ raw: some Sequence<UInt8>) { bytes.append(contentsOf: raw) }

    /// A string prefixed by its length in a `Length`-wide integer; the caller checks the bound.
    /// Its bytes are appended from the string itself (no array of them first: that was an
    /// allocation per key and per version in every message and envelope).
    mutating func writeString<Length: FixedWidthInteger>(_ string: String, lengthType: Length.Type) {
        let utf8 = string.utf8
        write(Length(utf8.count))
        bytes.append(contentsOf: utf8)
    }

    mutating func write(_ version: CacheVersion) {
        write(version.milliseconds)
        write(version.counter)
        writeString(version.node, lengthType: UInt8.self)
    }
}

/// Reads big-endian fields from a byte array; every read is bounds-checked and fails with nil,
/// so a truncated or corrupt input can never crash.
struct BinaryReader {
    let bytes: [UInt8]
    private(set) var offset: Int

    init(_ bytes: [UInt8], offset: Int = 0) {
        self.bytes = bytes
        self.offset = offset
    }

    var remaining: Int { bytes.count - offset }

    mutating func readByte() -> UInt8? {
        guard offset < bytes.count else { return nil }
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func read<Integer: FixedWidthInteger>(_: Integer.Type) -> Integer? {
        let size = MemoryLayout<Integer>.size
        guard remaining >= size else { return nil }
        var value: Integer = 0
        for index in 0..<size {
            value = value << 8 | Integer(bytes[offset + index])
        }
        offset += size
        return value
    }

    mutating func readBytes(_ count: Int) -> [UInt8]? {
        guard count >= 0, remaining >= count else { return nil }
        defer { offset += count }
        return Array(bytes[offset..<offset + count])
    }

    /// Validated straight from the input's bytes, without copying them into an array first.
    mutating func readString<Length: FixedWidthInteger>(lengthType: Length.Type) -> String? {
        guard let length = read(Length.self) else { return nil }
        let count = Int(length)
        guard count >= 0, remaining >= count else { return nil }
        defer { offset += count }
        return String(validating: bytes[offset..<offset + count], as: UTF8.self)
    }

    mutating func readVersion() -> CacheVersion? {
        guard let millis = read(Int64.self), let counter = read(UInt32.self),
              let node = readString(lengthType: UInt8.self)
        else { return nil }
        return CacheVersion(milliseconds: millis, counter: counter, node: node)
    }
}
