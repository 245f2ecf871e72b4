/// A notification on the backplane: `{epoch, seq, op, key, version, write id, instance}` in a
/// versioned binary layout, optionally signed, optionally with the writer's trace context. The
/// source is the version's node.
@_spi(ConcordBackend)
public struct BackplaneMessage: Sendable, Equatable {
    /// The id of the Redis dataset the sequence belongs to.
    public var epoch: String
    /// Position in the invalidation log; consecutive within an epoch.
    public var sequence: UInt64
    public var kind: MutationKind
    public var key: String
    public var version: CacheVersion
    /// A random id of the write, so a node can tell whether the log entry at a sequence number is
    /// the one it applied (history that went back reuses sequence numbers for other writes).
    public var writeID: UInt64
    /// A random id of the writing process, beside the node id: two live processes with one node
    /// id (a copied configuration) show up as two instances.
    public var instance: UInt64
    /// Whether the message carried a tag the authenticator accepted (false when none is set).
    public var isAuthenticated: Bool
    /// The writer's trace context, when it wrote under a traced span.
    public var traceContext: BackplaneTraceContext?

    public init(
        epoch: String, sequence: UInt64, kind: MutationKind, key: String, version: CacheVersion,
        writeID: UInt64 = 0, instance: UInt64 = 0, isAuthenticated: Bool = false,
        traceContext: BackplaneTraceContext? = nil
    ) {
        self.epoch = epoch
        self.sequence = sequence
        self.kind = kind
        self.key = key
        self.version = version
        self.writeID = writeID
        self.instance = instance
        self.isAuthenticated = isAuthenticated
        self.traceContext = traceContext
    }

    /// The node that made the change.
    public var source: String { version.node }

    /// `CNCB`: marks a Concord backplane message.
    public static let magic: [UInt8] = [0x43, 0x4E, 0x43, 0x42]
    /// The layout this build writes and reads.
    public static let formatVersion: UInt8 = 2
    /// The longest authentication tag a message may carry.
    public static let maxTagBytes = 64

    /// The part of a message a node knows before Redis assigns the sequence: op, version, key,
    /// write id, instance, then the tag (u8 length + bytes, length 0 when unsigned) over all of
    /// these. A Redis script prefixes it with `magic, format, epoch, seq` (see `assemble`).
    ///
    /// With a trace context the body starts with it (`BackplaneTraceContext.marker`, then its
    /// fields), inside the signed part. The format number stays 2: a message without a trace
    /// context is byte for byte what earlier builds write, so a cluster that does not trace
    /// mixes builds freely; an earlier build rejects a traced message as an unknown operation,
    /// so turn tracing on once every node runs a build that reads it.
    public static func encodeBody(
        kind: MutationKind, key: String, version: CacheVersion, writeID: UInt64, instance: UInt64,
        authenticator: (any MessageAuthenticator)? = nil, traceContext: BackplaneTraceContext? = nil
    ) -> [UInt8] {
        var writer = BinaryWriter(capacity: key.utf8.count + 96)
        traceContext?.encode(into: &writer)
        writer.write(kind.rawValue)
        writer.write(version)
        writer.writeString(key, lengthType: UInt32.self)
        writer.write(writeID)
        writer.write(instance)
        let tag = authenticator?.tag(for: writer.bytes[...]) ?? []
        writer.write(UInt8(tag.count))
        writer.write(tag)
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

    /// This message's bytes, signed by `authenticator` when one is given.
    public func encoded(authenticator: (any MessageAuthenticator)? = nil) -> [UInt8] {
        Self.assemble(
            epoch: epoch, sequence: sequence,
            body: Self.encodeBody(
                kind: kind, key: key, version: version, writeID: writeID, instance: instance, authenticator: authenticator,
                traceContext: traceContext
            )
        )
    }

    /// Decodes a message; throws `CacheError(.invalidMessage)` for anything that is not a
    /// complete message of this format, or whose key is longer than `maxKeyBytes`. With an
    /// authenticator, a message without a valid tag throws `CacheError(.unauthenticatedMessage)`.
    public static func decode(
        _ bytes: [UInt8], maxKeyBytes: Int = .max, authenticator: (any MessageAuthenticator)? = nil
    ) throws -> BackplaneMessage {
        var reader = BinaryReader(bytes)
        guard let magic = reader.readBytes(4), magic == Self.magic else {
            throw CacheError(.invalidMessage, "backplane message does not start with the Concord magic")
        }
        guard let format = reader.readByte() else { throw CacheError(.invalidMessage, "backplane message is truncated") }
        guard format == Self.formatVersion else {
            throw CacheError(.invalidMessage, "backplane message has format \(format); this build reads \(Self.formatVersion)")
        }
        guard let epoch = reader.readString(lengthType: UInt8.self), !epoch.isEmpty,
              let sequence = reader.read(UInt64.self)
        else { throw CacheError(.invalidMessage, "backplane message header is truncated") }
        let bodyStart = reader.offset
        guard var rawKind = reader.readByte() else { throw CacheError(.invalidMessage, "backplane message header is truncated") }
        var traceContext: BackplaneTraceContext?
        if rawKind == BackplaneTraceContext.marker {
            traceContext = try BackplaneTraceContext.decode(from: &reader)
            guard let kindAfterContext = reader.readByte() else { throw CacheError(.invalidMessage, "backplane message body is truncated") }
            rawKind = kindAfterContext
        }
        guard let kind = MutationKind(rawValue: rawKind) else {
            throw CacheError(.invalidMessage, "backplane message has unknown operation \(rawKind)")
        }
        guard let version = reader.readVersion(), CacheVersion.isValidNode(version.node) else {
            throw CacheError(.invalidMessage, "backplane message version is truncated or corrupt")
        }
        guard let keyLength = reader.read(UInt32.self) else { throw CacheError(.invalidMessage, "backplane message key is truncated") }
        guard UInt64(keyLength) <= UInt64(max(0, maxKeyBytes)) else {
            throw CacheError(.invalidMessage, "backplane message key is \(keyLength) bytes; the limit is \(maxKeyBytes)")
        }
        guard let keyBytes = reader.readBytes(Int(keyLength)), let key = String(validating: keyBytes, as: UTF8.self),
              let writeID = reader.read(UInt64.self), let instance = reader.read(UInt64.self)
        else { throw CacheError(.invalidMessage, "backplane message body is truncated or corrupt") }
        let signedEnd = reader.offset
        guard let tagLength = reader.readByte(), Int(tagLength) <= Self.maxTagBytes, let tag = reader.readBytes(Int(tagLength)) else {
            throw CacheError(.invalidMessage, "backplane message tag is truncated or too long")
        }
        guard reader.remaining == 0 else {
            throw CacheError(.invalidMessage, "backplane message has \(reader.remaining) trailing bytes")
        }
        if kind.isKeyed && key.isEmpty {
            throw CacheError(.invalidMessage, "backplane \(kind) message has an empty key")
        }
        var isAuthenticated = false
        if let authenticator {
            guard !tag.isEmpty else {
                throw CacheError(.unauthenticatedMessage, "backplane message is not signed, and a backplane key is configured")
            }
            guard authenticator.isValid(tag: tag[...], for: bytes[bodyStart..<signedEnd]) else {
                throw CacheError(.unauthenticatedMessage, "backplane message's signature does not match any backplane key")
            }
            isAuthenticated = true
        }
        return BackplaneMessage(
            epoch: epoch, sequence: sequence, kind: kind, key: key, version: version,
            writeID: writeID, instance: instance, isAuthenticated: isAuthenticated, traceContext: traceContext
        )
    }
}
