import Concord

/// What Concord stores under one memcached key: an entry, a tombstone or a marker, with the
/// versions that fence it. Memcached has no hashes or scripts, so the record carries in one value
/// what Redis keeps in hash fields (`v`, `d`, `x`), and compare-and-set on its CAS token makes
/// each update atomic.
///
/// Layout: magic `CNCM`, format 2, kind, version, second version (expire, or clear-expire),
/// the Concord key it belongs to, the home server's generation (away from home), the entry
/// envelope. Anything else reads as absent.
struct MemcachedRecord: Sendable, Equatable {
    enum Kind: UInt8, Sendable {
        /// A value: `envelope` is the entry, `secondVersion` the newest `expire` of the key.
        case entry = 1
        /// A remove: nothing may come back that is older than `version`.
        case tombstone = 2
        /// A tag marker (`version` = newest removal) or the clear marker (`version` = newest
        /// clear-remove, `secondVersion` = newest clear-expire).
        case marker = 3
    }

    var kind: Kind
    var version: CacheVersion?
    var secondVersion: CacheVersion?
    /// The Concord key (or tag) the record belongs to; checked on read, so a hashed memcached key
    /// can never return another key's value.
    var owner: String
    /// For a copy stored away from its home server (which was off the ring), the generation that
    /// home server had then; empty at home. Once the home server has a new generation (it came
    /// back and was flushed), such a copy is a leftover of an earlier outage and reads as absent.
    var homeGeneration: String = ""
    var envelope: [UInt8]

    static let magic: [UInt8] = Array("CNCM".utf8)
    static let format: UInt8 = 2

    func encoded() -> [UInt8] {
        var bytes = Self.magic
        bytes.append(Self.format)
        bytes.append(kind.rawValue)
        Self.append(version?.orderedText ?? "", to: &bytes)
        Self.append(secondVersion?.orderedText ?? "", to: &bytes)
        Self.append(owner, to: &bytes)
        Self.append(homeGeneration, to: &bytes)
        let count = UInt32(envelope.count)
        for shift in stride(from: 24, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: count >> UInt32(shift))) }
        bytes += envelope
        return bytes
    }

    private static func append(_ text: String, to bytes: inout [UInt8]) {
        let utf8 = Array(text.utf8)
        bytes.append(UInt8(truncatingIfNeeded: utf8.count >> 8))
        bytes.append(UInt8(truncatingIfNeeded: utf8.count))
        bytes += utf8
    }

    /// Decodes a record; nil for bytes of another format, truncated or corrupt. Never traps.
    static func decode(_ bytes: [UInt8]) -> MemcachedRecord? {
        var offset = 0
        func take(_ count: Int) -> ArraySlice<UInt8>? {
            guard count >= 0, bytes.count - offset >= count else { return nil }
            defer { offset += count }
            return bytes[offset..<(offset + count)]
        }
        func text() -> String?? {
            guard let length = take(2) else { return nil }
            let count = Int(length[length.startIndex]) << 8 | Int(length[length.startIndex + 1])
            guard let body = take(count) else { return nil }
            return .some(String(decoding: body, as: UTF8.self))
        }
        func version() -> CacheVersion?? {
            guard let value = text() else { return nil }
            guard let value, !value.isEmpty else { return .some(nil) }
            guard let version = CacheVersion(orderedText: value) else { return nil }
            return .some(version)
        }
        guard let magic = take(4), Array(magic) == Self.magic, let format = take(1), format.first == Self.format,
              let kindByte = take(1)?.first, let kind = Kind(rawValue: kindByte),
              let first = version(), let second = version(), let owner = text(), let owner,
              let home = text(), let home, let length = take(4)
        else { return nil }
        let count = length.reduce(0) { $0 << 8 | Int($1) }
        guard let envelope = take(count), offset == bytes.count else { return nil }
        return MemcachedRecord(kind: kind, version: first, secondVersion: second, owner: owner, homeGeneration: home, envelope: Array(envelope))
    }
}
