import NIOCore

/// One argument of a Redis command: text, raw bytes or a number, always sent as a binary-safe bulk string.
public struct RedisArgument: Sendable, Hashable, ExpressibleByStringLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByStringInterpolation
{
    enum Storage: Sendable, Hashable {
        case string(String)
        case bytes([UInt8])
        case buffer(ByteBuffer)
        case integer(Int64)
    }

    let storage: Storage

    public init(_ string: String) { storage = .string(string) }
    public init(_ bytes: [UInt8]) { storage = .bytes(bytes) }
    public init(_ buffer: ByteBuffer) { storage = .buffer(buffer) }
    public init(_ value: Int) { storage = .integer(Int64(value)) }
    public init(_ value: Int64) { storage = .integer(value) }
    public init(_ value: Double) { storage = .string(value.description) }
    public init(stringLiteral value: String) { storage = .string(value) }
    public init(integerLiteral value: Int) { storage = .integer(Int64(value)) }

    /// The argument's bytes as Redis will see them.
    public var bytes: [UInt8] {
        switch storage {
        case .string(let string): Array(string.utf8)
        case .bytes(let bytes): bytes
        case .buffer(let buffer): Array(buffer.readableBytesView)
        case .integer(let value): Array(String(value).utf8)
        }
    }
}

extension RedisArgument: CustomStringConvertible {
    public var description: String {
        switch storage {
        case .string(let string): string
        case .bytes(let bytes): String(decoding: bytes, as: UTF8.self)
        case .buffer(let buffer): String(buffer: buffer)
        case .integer(let value): String(value)
        }
    }
}

/// Writes commands as RESP arrays of bulk strings.
enum RESPEncoder {
    static func encode(_ arguments: [RedisArgument], into buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt8(ascii: "*"))
        writeDecimal(Int64(arguments.count), into: &buffer)
        writeCRLF(into: &buffer)
        for argument in arguments {
            encode(argument, into: &buffer)
        }
    }

    /// Encodes `command` followed by `arguments`, without building a joined array.
    static func encode(_ command: RedisArgument, _ arguments: [RedisArgument], into buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt8(ascii: "*"))
        writeDecimal(Int64(arguments.count + 1), into: &buffer)
        writeCRLF(into: &buffer)
        encode(command, into: &buffer)
        for argument in arguments {
            encode(argument, into: &buffer)
        }
    }

    @inline(__always)
    static func encode(_ argument: RedisArgument, into buffer: inout ByteBuffer) {
        switch argument.storage {
        case .string(var string):
            // Native strings answer utf8.count in O(1); bridged ones are made native first.
            string.makeContiguousUTF8()
            writeBulkHeader(string.utf8.count, into: &buffer)
            buffer.writeString(string)
        case .bytes(let bytes):
            writeBulkHeader(bytes.count, into: &buffer)
            buffer.writeBytes(bytes)
        case .buffer(let payload):
            writeBulkHeader(payload.readableBytes, into: &buffer)
            buffer.writeImmutableBuffer(payload)
        case .integer(let value):
            // Digits are written twice (length, then value) to avoid formatting into a String.
            writeBulkHeader(decimalLength(value), into: &buffer)
            writeDecimal(value, into: &buffer)
        }
        writeCRLF(into: &buffer)
    }

    @inline(__always)
    private static func writeBulkHeader(_ length: Int, into buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt8(ascii: "$"))
        writeDecimal(Int64(length), into: &buffer)
        writeCRLF(into: &buffer)
    }

    @inline(__always)
    private static func writeCRLF(into buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt16(0x0D0A))  // "\r\n" big-endian
    }

    static func decimalLength(_ value: Int64) -> Int {
        var magnitude = value.magnitude
        var length = value < 0 ? 2 : 1
        while magnitude >= 10 {
            magnitude /= 10
            length += 1
        }
        return length
    }

    static func writeDecimal(_ value: Int64, into buffer: inout ByteBuffer) {
        let length = decimalLength(value)
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: length) { pointer in
            var magnitude = value.magnitude
            var index = length - 1
            repeat {
                pointer[index] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
                index -= 1
            } while magnitude > 0
            if value < 0 { pointer[0] = UInt8(ascii: "-") }
            return length
        }
    }
}
