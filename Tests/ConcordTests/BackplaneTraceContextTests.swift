@_spi(ConcordBackend) import Concord
import Testing

/// The trace context a backplane message may carry: it round-trips, is signed with the rest of
/// the body, leaves an untraced message as earlier builds write it, and malformed fields are
/// typed errors.
@Suite("Backplane trace context")
struct BackplaneTraceContextTests {
    let version = CacheVersion(milliseconds: 1_700_000_000_000, counter: 3, node: "n1")
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

    func message(_ context: BackplaneTraceContext?) -> BackplaneMessage {
        BackplaneMessage(epoch: "e1", sequence: 7, kind: .set, key: "k", version: version, writeID: 11, instance: 12, traceContext: context)
    }

    func invalidMessage(_ bytes: [UInt8]) -> Bool {
        do {
            _ = try BackplaneMessage.decode(bytes)
            return false
        } catch let error as CacheError {
            return error.code == .invalidMessage
        } catch {
            return false
        }
    }

    @Test("a message with a trace context round-trips, and one without encodes exactly as before")
    func roundTrip() throws {
        let context = try BackplaneTraceContext(fields: ["traceparent": traceparent, "tracestate": "vendor=a,other=b"])
        let traced = message(context)
        #expect(try BackplaneMessage.decode(traced.encoded()) == traced)

        // The untraced layout, written out field by field: magic, format 2, epoch, seq, op,
        // version, key, write id, instance, empty tag.
        var expected: [UInt8] = [0x43, 0x4E, 0x43, 0x42, 2, 2] + Array("e1".utf8)
        expected += bigEndian(UInt64(7)) + [MutationKind.set.rawValue]
        expected += bigEndian(Int64(1_700_000_000_000)) + bigEndian(UInt32(3)) + [2] + Array("n1".utf8)
        expected += bigEndian(UInt32(1)) + Array("k".utf8) + bigEndian(UInt64(11)) + bigEndian(UInt64(12)) + [0]
        #expect(message(nil).encoded() == expected)
        #expect(try BackplaneMessage.decode(expected).traceContext == nil)
        // The traced message is the untraced one with the context in front of the operation.
        let tracedBytes = traced.encoded()
        #expect(tracedBytes.count > expected.count && tracedBytes[16] == 0xF0)
    }

    @Test("the trace context is signed: changing it fails the key check")
    func signed() throws {
        let authenticator = TestAuthenticator(secret: 9)
        let traced = message(try BackplaneTraceContext(fields: ["traceparent": traceparent]))
        var bytes = traced.encoded(authenticator: authenticator)
        #expect(try BackplaneMessage.decode(bytes, authenticator: authenticator).traceContext == traced.traceContext)
        let digit = try #require(bytes.firstIndex(of: UInt8(ascii: "4")))
        bytes[digit] = UInt8(ascii: "5")
        #expect {
            try BackplaneMessage.decode(bytes, authenticator: authenticator)
        } throws: { error in
            (error as? CacheError)?.code == .unauthenticatedMessage
        }
    }

    @Test("field names and values out of bounds are refused when built and when received")
    func boundsAreTypedErrors() throws {
        let refused: [[String: String]] = [
            [:],
            ["Traceparent": traceparent],
            ["trace parent": traceparent],
            [String(repeating: "a", count: 65): "x"],
            ["traceparent": "line\nbreak"],
            ["traceparent": String(repeating: "0", count: 513)],
            Dictionary(uniqueKeysWithValues: (0..<9).map { ("f\($0)", "v") }),
        ]
        for fields in refused {
            #expect {
                _ = try BackplaneTraceContext(fields: fields)
            } throws: { error in
                (error as? CacheError)?.code == .invalidMessage
            }
        }
        #expect(try BackplaneTraceContext(fields: ["traceparent": ""]).fields["traceparent"] == "")
    }

    @Test("truncated, repeated or malformed trace context fields on the wire are invalidMessage")
    func malformedOnTheWire() throws {
        let valid = message(try BackplaneTraceContext(fields: ["a": "1", "b": "2"])).encoded()
        let contextStart = 16
        // Every truncation inside the context (and after it) is refused, never trapped on.
        for length in contextStart..<valid.count {
            #expect(invalidMessage(Array(valid.prefix(length))))
        }
        var zeroFields = valid
        zeroFields[contextStart + 1] = 0
        #expect(invalidMessage(zeroFields))
        var tooMany = valid
        tooMany[contextStart + 1] = 9
        #expect(invalidMessage(tooMany))
        // Fields: count 2, then [1, "a", 0, 1, "1"] and [1, "b", 0, 1, "2"]: name the first one twice.
        var repeated = valid
        repeated[contextStart + 8] = UInt8(ascii: "a")
        #expect(invalidMessage(repeated))
        var upperCase = valid
        upperCase[contextStart + 3] = UInt8(ascii: "A")
        #expect(invalidMessage(upperCase))
        var controlCharacter = valid
        controlCharacter[contextStart + 6] = 0x07
        #expect(invalidMessage(controlCharacter))
        var longValue = valid
        longValue[contextStart + 4] = 0x02
        longValue[contextStart + 5] = 0x01
        #expect(invalidMessage(longValue))
        // A second marker where the operation belongs is not an operation.
        var doubleMarker = valid
        doubleMarker.insert(contentsOf: [0xF0, 1, 1, UInt8(ascii: "c"), 0, 0], at: contextStart)
        #expect(invalidMessage(doubleMarker))
    }

    func bigEndian<Integer: FixedWidthInteger>(_ value: Integer) -> [UInt8] {
        withUnsafeBytes(of: value.bigEndian) { Array($0) }
    }
}
