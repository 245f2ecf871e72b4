/// The L2 form of an entry: the binary envelope `magic, format, version, logical expiry, tags,
/// payload`. Any reader, in any process, can tell whether it understands the bytes.
public struct DistributedEntry: Sendable, Equatable {
    /// The write's version.
    public var version: CacheVersion
    /// When the entry stops being fresh, in Unix milliseconds (wall clock, shared by all nodes).
    public var logicalExpiryMilliseconds: Int64
    /// Tags for `removeByTag`.
    public var tags: [String]
    /// The serialized value.
    public var payload: [UInt8]

    public init(version: CacheVersion, logicalExpiryMilliseconds: Int64, tags: [String] = [], payload: [UInt8]) {
        self.version = version
        self.logicalExpiryMilliseconds = logicalExpiryMilliseconds
        self.tags = tags
        self.payload = payload
    }

    /// `CNCE`: marks a Concord entry envelope.
    @_spi(ConcordBackend) public static let magic: [UInt8] = [0x43, 0x4E, 0x43, 0x45]
    /// The envelope layout this build writes and reads. Another format reads as a miss.
    @_spi(ConcordBackend) public static let formatVersion: UInt8 = 1

    /// The envelope bytes.
    @_spi(ConcordBackend) public func encoded() -> [UInt8] {
        var writer = BinaryWriter(capacity: payload.count + 64)
        writer.write(Self.magic)
        writer.write(Self.formatVersion)
        writer.write(version)
        writer.write(logicalExpiryMilliseconds)
        writer.write(UInt16(tags.count))
        for tag in tags { writer.writeString(tag, lengthType: UInt16.self) }
        writer.write(UInt32(payload.count))
        writer.write(payload)
        return writer.bytes
    }

    /// Decodes an envelope. Throws `CacheError(.invalidMessage)` for bytes of another format,
    /// truncated or corrupt; never traps.
    @_spi(ConcordBackend) public static func decode(_ bytes: [UInt8]) throws -> DistributedEntry {
        var reader = BinaryReader(bytes)
        guard let magic = reader.readBytes(4), magic == Self.magic else {
            throw CacheError(.invalidMessage, "L2 entry does not start with the Concord envelope magic")
        }
        guard let format = reader.readByte() else {
            throw CacheError(.invalidMessage, "L2 entry is truncated before its format version")
        }
        guard format == Self.formatVersion else {
            throw CacheError(.invalidMessage, "L2 entry has envelope format \(format); this build reads \(Self.formatVersion)")
        }
        guard let version = reader.readVersion(), let expiry = reader.read(Int64.self),
              let tagCount = reader.read(UInt16.self)
        else { throw CacheError(.invalidMessage, "L2 entry header is truncated") }
        var tags: [String] = []
        tags.reserveCapacity(Int(tagCount))
        for _ in 0..<tagCount {
            guard let tag = reader.readString(lengthType: UInt16.self) else {
                throw CacheError(.invalidMessage, "L2 entry tags are truncated")
            }
            tags.append(tag)
        }
        guard let length = reader.read(UInt32.self), let payload = reader.readBytes(Int(length)) else {
            throw CacheError(.invalidMessage, "L2 entry payload is truncated")
        }
        guard reader.remaining == 0 else {
            throw CacheError(.invalidMessage, "L2 entry has \(reader.remaining) trailing bytes")
        }
        return DistributedEntry(version: version, logicalExpiryMilliseconds: expiry, tags: tags, payload: payload)
    }
}
