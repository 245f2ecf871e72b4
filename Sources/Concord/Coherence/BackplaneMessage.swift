/// A notification on the backplane: `{epoch, seq, op, key, version, source}` in a versioned
/// binary layout. The source is the version's node.
@_spi(ConcordBackend)
public struct BackplaneMessage: Sendable, Equatable {
    /// The id of the Redis dataset the sequence belongs to.
    public var epoch: String
    /// Position in the invalidation log; consecutive within an epoch.
    public var sequence: UInt64
    public var kind: MutationKind
    public var key: String
    public var version: CacheVersion

    public init(epoch: String, sequence: UInt64, kind: MutationKind, key: String, version: CacheVersion) {
        self.epoch = epoch
        self.sequence = sequence
        self.kind = kind
        self.key = key
        self.version = version
    }

    /// The node that made the change.
    public var source: String { version.node }

    /// `CNCB`: marks a Concord backplane message.
    public static let magic: [UInt8] = [0x43, 0x4E, 0x43, 0x42]
    /// The layout this build writes and reads.
    public static let formatVersion: UInt8 = 1

    /// The part of a message a node knows before Redis assigns the sequence: op, version, key.
    /// A Redis script prefixes it with `magic, format, epoch, seq` (see `assemble`).
    public static func encodeBody(kind: MutationKind, key: String, version: CacheVersion) -> [UInt8] {
        var writer = BinaryWriter(capacity: key.utf8.count + 48)
        writer.write(kind.rawValue)
        writer.write(version)
        writer.writeString(key, lengthType: UInt32.self)
        return writer.bytes
    }

    /// The whole message: `magic, format, epoch (u8 length + bytes), seq (u64), body`.
    public static func assemble(epoch: String, sequence: UInt64, body: [UInt8]) -> [UInt8] {
        var writer = BinaryWriter(capacity: body.count + 32)
        writer.write(magic)
        writer.write(formatVersion)
        writer.writeString(epoch, lengthType: UInt8.self)
        writer.write(sequence)
        writer.write(body)
        return writer.bytes
    }

    /// This message's bytes.
    public func encoded() -> [UInt8] {
        Self.assemble(epoch: epoch, sequence: sequence, body: Self.encodeBody(kind: kind, key: key, version: version))
    }

    /// Decodes a message; throws `CacheError(.invalidMessage)` for anything that is not a
    /// complete message of this format.
    public static func decode(_ bytes: [UInt8]) throws -> BackplaneMessage {
        var reader = BinaryReader(bytes)
        guard let magic = reader.readBytes(4), magic == Self.magic else {
            throw CacheError(.invalidMessage, "backplane message does not start with the Concord magic")
        }
        guard let format = reader.readByte() else { throw CacheError(.invalidMessage, "backplane message is truncated") }
        guard format == Self.formatVersion else {
            throw CacheError(.invalidMessage, "backplane message has format \(format); this build reads \(Self.formatVersion)")
        }
        guard let epoch = reader.readString(lengthType: UInt8.self), !epoch.isEmpty,
              let sequence = reader.read(UInt64.self), let rawKind = reader.readByte()
        else { throw CacheError(.invalidMessage, "backplane message header is truncated") }
        guard let kind = MutationKind(rawValue: rawKind) else {
            throw CacheError(.invalidMessage, "backplane message has unknown operation \(rawKind)")
        }
        guard let version = reader.readVersion(), CacheVersion.isValidNode(version.node),
              let key = reader.readString(lengthType: UInt32.self)
        else { throw CacheError(.invalidMessage, "backplane message body is truncated or corrupt") }
        guard reader.remaining == 0 else {
            throw CacheError(.invalidMessage, "backplane message has \(reader.remaining) trailing bytes")
        }
        if kind.isKeyed && key.isEmpty {
            throw CacheError(.invalidMessage, "backplane \(kind) message has an empty key")
        }
        return BackplaneMessage(epoch: epoch, sequence: sequence, kind: kind, key: key, version: version)
    }
}
