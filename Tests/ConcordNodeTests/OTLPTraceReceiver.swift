import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Synchronization

/// A small OTLP/HTTP trace collector on a free loopback port: `POST /v1/traces` with a
/// protobuf `ExportTraceServiceRequest` body, decoded here field by field (only what the tests
/// read), answered with an empty protobuf `ExportTraceServiceResponse`. A body that does not
/// decode is answered 400 and recorded as a failure, so a test sees it.
final class OTLPTraceReceiver: Sendable {
    /// One exported span, with the resource attributes of the batch it came in.
    struct Span: Sendable, CustomStringConvertible {
        var traceID: String
        var spanID: String
        /// Empty for a root span.
        var parentSpanID: String
        var name: String
        /// OTLP's `SpanKind`: 1 internal, 2 server, 3 client, 4 producer, 5 consumer.
        var kind: Int
        var attributes: [String: String]
        var resource: [String: String]

        var description: String {
            "\(name) kind=\(kind) trace=\(traceID) span=\(spanID) parent=\(parentSpanID.isEmpty ? "-" : parentSpanID) \(attributes)"
        }
    }

    struct State: Sendable {
        var spans: [Span] = []
        var contentTypes: [String] = []
        var failures: [String] = []
    }

    private let state = Mutex(State())

    var spans: [Span] { state.withLock { $0.spans } }
    var contentTypes: [String] { state.withLock { $0.contentTypes } }
    var failures: [String] { state.withLock { $0.failures } }

    /// Runs `body` with the receiver listening; its port is the argument.
    func run(_ body: @Sendable @escaping (Int) async throws -> Void) async throws {
        let router = Router()
        router.post("/v1/traces") { request, _ -> Response in
            let contentType = request.headers[.contentType] ?? ""
            let buffer = try await request.body.collect(upTo: 16 << 20)
            do {
                let spans = try Self.decodeExportRequest(Array(buffer.readableBytesView))
                self.state.withLock {
                    $0.contentTypes.append(contentType)
                    $0.spans += spans
                }
            } catch {
                self.state.withLock { $0.failures.append("\(error)") }
                return Response(status: .badRequest)
            }
            return Response(status: .ok, headers: [.contentType: "application/x-protobuf"])
        }
        let application = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await application.test(.live) { client in
            guard let port = client.port else { throw TestError("the OTLP receiver has no port") }
            try await body(port)
        }
    }

    // MARK: - Decoding

    /// `ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }`.
    static func decodeExportRequest(_ bytes: [UInt8]) throws -> [Span] {
        var reader = ProtobufReader(bytes[...])
        var spans: [Span] = []
        while let (field, wireType) = try reader.nextField() {
            if field == 1, wireType == 2 {
                spans += try decodeResourceSpans(try reader.lengthDelimited())
            } else {
                try reader.skip(wireType)
            }
        }
        return spans
    }

    /// `ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2; }`, where
    /// `Resource { repeated KeyValue attributes = 1; }` and `ScopeSpans { repeated Span spans = 2; }`.
    private static func decodeResourceSpans(_ bytes: ArraySlice<UInt8>) throws -> [Span] {
        var reader = ProtobufReader(bytes)
        var resource: [String: String] = [:]
        var spans: [Span] = []
        while let (field, wireType) = try reader.nextField() {
            switch (field, wireType) {
            case (1, 2):
                var resourceReader = ProtobufReader(try reader.lengthDelimited())
                while let (field, wireType) = try resourceReader.nextField() {
                    if field == 1, wireType == 2 {
                        let (key, value) = try decodeKeyValue(try resourceReader.lengthDelimited())
                        resource[key] = value
                    } else {
                        try resourceReader.skip(wireType)
                    }
                }
            case (2, 2):
                var scopeReader = ProtobufReader(try reader.lengthDelimited())
                while let (field, wireType) = try scopeReader.nextField() {
                    if field == 2, wireType == 2 {
                        spans.append(try decodeSpan(try scopeReader.lengthDelimited()))
                    } else {
                        try scopeReader.skip(wireType)
                    }
                }
            default:
                try reader.skip(wireType)
            }
        }
        return spans.map { span in
            var span = span
            span.resource = resource
            return span
        }
    }

    /// `Span { bytes trace_id = 1; bytes span_id = 2; bytes parent_span_id = 4; string name = 5;
    /// SpanKind kind = 6; repeated KeyValue attributes = 9; ... }`.
    private static func decodeSpan(_ bytes: ArraySlice<UInt8>) throws -> Span {
        var reader = ProtobufReader(bytes)
        var span = Span(traceID: "", spanID: "", parentSpanID: "", name: "", kind: 0, attributes: [:], resource: [:])
        while let (field, wireType) = try reader.nextField() {
            switch (field, wireType) {
            case (1, 2): span.traceID = hex(try reader.lengthDelimited())
            case (2, 2): span.spanID = hex(try reader.lengthDelimited())
            case (4, 2): span.parentSpanID = hex(try reader.lengthDelimited())
            case (5, 2): span.name = try utf8(try reader.lengthDelimited())
            case (6, 0): span.kind = Int(try reader.varint())
            case (9, 2):
                let (key, value) = try decodeKeyValue(try reader.lengthDelimited())
                span.attributes[key] = value
            default: try reader.skip(wireType)
            }
        }
        guard span.traceID.count == 32, span.spanID.count == 16, span.parentSpanID.isEmpty || span.parentSpanID.count == 16 else {
            throw TestError("span '\(span.name)' has malformed ids: trace \(span.traceID), span \(span.spanID), parent \(span.parentSpanID)")
        }
        return span
    }

    /// `KeyValue { string key = 1; AnyValue value = 2; }` with the value as text:
    /// `AnyValue { string string_value = 1; bool bool_value = 2; int64 int_value = 3; double double_value = 4; ... }`.
    private static func decodeKeyValue(_ bytes: ArraySlice<UInt8>) throws -> (String, String) {
        var reader = ProtobufReader(bytes)
        var key = ""
        var value = ""
        while let (field, wireType) = try reader.nextField() {
            switch (field, wireType) {
            case (1, 2): key = try utf8(try reader.lengthDelimited())
            case (2, 2):
                var valueReader = ProtobufReader(try reader.lengthDelimited())
                while let (field, wireType) = try valueReader.nextField() {
                    switch (field, wireType) {
                    case (1, 2): value = try utf8(try valueReader.lengthDelimited())
                    case (2, 0): value = try valueReader.varint() != 0 ? "true" : "false"
                    case (3, 0): value = String(Int64(bitPattern: try valueReader.varint()))
                    case (4, 1): value = String(Double(bitPattern: try valueReader.fixed64()))
                    default: try valueReader.skip(wireType)
                    }
                }
            default: try reader.skip(wireType)
            }
        }
        return (key, value)
    }

    private static func hex(_ bytes: ArraySlice<UInt8>) -> String {
        bytes.map { String(format: "%02x", $0) }.joined()
    }

    private static func utf8(_ bytes: ArraySlice<UInt8>) throws -> String {
        guard let text = String(validating: bytes, as: UTF8.self) else { throw TestError("a string field is not UTF-8") }
        return text
    }
}

/// Reads protobuf's wire format: tags, varints, fixed-width and length-delimited fields. Every
/// read is bounds-checked; a truncated or malformed message throws.
struct ProtobufReader {
    private var bytes: ArraySlice<UInt8>

    init(_ bytes: ArraySlice<UInt8>) { self.bytes = bytes }

    /// The next field's number and wire type, or nil at the end.
    mutating func nextField() throws -> (Int, Int)? {
        guard !bytes.isEmpty else { return nil }
        let tag = try varint()
        let field = Int(tag >> 3)
        guard field > 0 else { throw TestError("protobuf field number 0") }
        return (field, Int(tag & 7))
    }

    mutating func varint() throws -> UInt64 {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while let byte = bytes.popFirst() {
            value |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return value }
            shift += 7
            guard shift < 64 else { throw TestError("protobuf varint longer than 10 bytes") }
        }
        throw TestError("protobuf varint truncated")
    }

    mutating func fixed64() throws -> UInt64 {
        guard bytes.count >= 8 else { throw TestError("protobuf fixed64 truncated") }
        var value: UInt64 = 0
        for (index, byte) in bytes.prefix(8).enumerated() { value |= UInt64(byte) << (8 * UInt64(index)) }
        bytes.removeFirst(8)
        return value
    }

    mutating func lengthDelimited() throws -> ArraySlice<UInt8> {
        let length = try varint()
        guard length <= UInt64(bytes.count) else { throw TestError("protobuf field of \(length) bytes with \(bytes.count) left") }
        let field = bytes.prefix(Int(length))
        bytes.removeFirst(Int(length))
        return field
    }

    /// Skips a field of `wireType` (groups, long deprecated, are refused).
    mutating func skip(_ wireType: Int) throws {
        switch wireType {
        case 0: _ = try varint()
        case 1: _ = try fixed64()
        case 2: _ = try lengthDelimited()
        case 5:
            guard bytes.count >= 4 else { throw TestError("protobuf fixed32 truncated") }
            bytes.removeFirst(4)
        default: throw TestError("protobuf wire type \(wireType) not supported")
        }
    }
}
