/// The trace context a backplane message carries from the write that caused it: the fields the
/// writer's tracer injected (W3C `traceparent` and `tracestate` with an OpenTelemetry tracer),
/// so the span of the node that applies the message can link to the writer's span.
///
/// On the wire it is an optional prefix of a message's body (see `BackplaneMessage`): the marker
/// byte, a u8 field count, then per field a u8 name length, the name, a u16 value length and
/// the value. Names are lowercase header names, values printable ASCII, both bounded, so a
/// message cannot smuggle control characters or unbounded text into a tracer.
public struct BackplaneTraceContext: Sendable, Equatable {
    /// Field name to value, as the tracer injected them.
    public let fields: [String: String]

    /// The most fields a context may carry.
    public static let maxFields = 8
    /// The longest field name, in bytes.
    public static let maxNameBytes = 64
    /// The longest field value, in bytes (a W3C `tracestate` may be up to 512).
    public static let maxValueBytes = 512
    /// Marks a body that starts with a trace context; no operation has this value.
    static let marker: UInt8 = 0xF0

    /// Throws `CacheError(.invalidMessage)` for no fields, too many, or a name or value out of
    /// bounds: the same checks a received message passes.
    public init(fields: [String: String]) throws(CacheError) {
        guard !fields.isEmpty, fields.count <= Self.maxFields else {
            throw CacheError(.invalidMessage, "a trace context has 1 to \(Self.maxFields) fields, not \(fields.count)")
        }
        for (name, value) in fields {
            guard Self.isValidName(Array(name.utf8)) else {
                throw CacheError(.invalidMessage, "trace context field name is not 1–\(Self.maxNameBytes) of [a-z0-9-_.]")
            }
            guard Self.isValidValue(Array(value.utf8)) else {
                throw CacheError(.invalidMessage, "trace context field '\(name)' is not 0–\(Self.maxValueBytes) bytes of printable ASCII")
            }
        }
        self.fields = fields
    }

    /// Appends the marker and the fields, in name order so equal contexts encode alike.
    func encode(into writer: inout BinaryWriter) {
        writer.write(Self.marker)
        writer.write(UInt8(fields.count))
        for name in fields.keys.sorted() {
            writer.writeString(name, lengthType: UInt8.self)
            writer.writeString(fields[name] ?? "", lengthType: UInt16.self)
        }
    }

    /// Reads the fields after the marker (already consumed).
    static func decode(from reader: inout BinaryReader) throws(CacheError) -> BackplaneTraceContext {
        guard let count = reader.readByte(), count >= 1, Int(count) <= maxFields else {
            throw CacheError(.invalidMessage, "backplane message trace context is truncated or has too many fields")
        }
        var fields: [String: String] = [:]
        for _ in 0..<count {
            guard let nameLength = reader.readByte(), let name = reader.readBytes(Int(nameLength)), isValidName(name),
                  let valueLength = reader.read(UInt16.self), Int(valueLength) <= maxValueBytes,
                  let value = reader.readBytes(Int(valueLength)), isValidValue(value)
            else { throw CacheError(.invalidMessage, "backplane message trace context field is truncated or malformed") }
            let key = String(decoding: name, as: UTF8.self)
            guard fields.updateValue(String(decoding: value, as: UTF8.self), forKey: key) == nil else {
                throw CacheError(.invalidMessage, "backplane message trace context names a field twice")
            }
        }
        return try BackplaneTraceContext(fields: fields)
    }

    private static func isValidName(_ bytes: [UInt8]) -> Bool {
        (1...maxNameBytes).contains(bytes.count) && bytes.allSatisfy { byte in
            (0x61...0x7A).contains(byte) || (0x30...0x39).contains(byte) || byte == 0x2D || byte == 0x5F || byte == 0x2E
        }
    }

    private static func isValidValue(_ bytes: [UInt8]) -> Bool {
        bytes.count <= maxValueBytes && bytes.allSatisfy { (0x20...0x7E).contains($0) }
    }
}
