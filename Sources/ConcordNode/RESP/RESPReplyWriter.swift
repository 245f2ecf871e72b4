import NIOCore

/// Writes RESP2 replies into a `ByteBuffer`, the encoding half of the front end.
struct RESPReplyWriter {
    var buffer: ByteBuffer

    init(buffer: ByteBuffer) {
        self.buffer = buffer
    }

    mutating func simple(_ text: StaticString) {
        buffer.writeInteger(UInt8(ascii: "+"))
        buffer.writeStaticString(text)
        crlf()
    }

    /// An error reply; line breaks in `message` would end the reply early, so they become spaces.
    mutating func error(_ message: String) {
        buffer.writeInteger(UInt8(ascii: "-"))
        buffer.writeBytes(message.utf8.lazy.map { $0 == 13 || $0 == 10 ? 32 : $0 })
        crlf()
    }

    mutating func integer(_ value: Int) {
        buffer.writeInteger(UInt8(ascii: ":"))
        decimal(value)
        crlf()
    }

    /// `$<length>\r\n<bytes>\r\n`, or `$-1\r\n` for nil. Written in one step into the buffer's
    /// memory: five separate writes cost five capacity checks and, `perf` showed, five run-time
    /// exclusivity checks of the buffer's storage per GET.
    mutating func bulk(_ bytes: [UInt8]?) {
        guard let bytes else {
            buffer.writeStaticString("$-1\r\n")
            return
        }
        bytes.withUnsafeBytes { bulk(bytes: $0) }
    }

    /// `$<length>\r\n<bytes>\r\n` of bytes where they lie, such as a cached value's storage.
    mutating func bulk(bytes value: UnsafeRawBufferPointer) {
        // `$`, at most 19 digits (a count), two CRLFs.
        _ = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: value.count + 24) { out in
            out[0] = UInt8(ascii: "$")
            var index = 1 + Self.digits(UInt(value.count), into: out, at: 1)
            out[index] = 13
            out[index + 1] = 10
            index += 2
            if !value.isEmpty {
                UnsafeMutableRawBufferPointer(rebasing: out[index...]).copyMemory(from: value)
            }
            index += value.count
            out[index] = 13
            out[index + 1] = 10
            return index + 2
        }
    }

    /// Writes the digits of `value` at `offset` and returns how many there are (at most 20).
    private static func digits(_ value: UInt, into out: UnsafeMutableRawBufferPointer, at offset: Int) -> Int {
        var count = 1
        var rest = value / 10
        while rest > 0 {
            count += 1
            rest /= 10
        }
        var magnitude = value
        for position in stride(from: offset + count - 1, through: offset, by: -1) {
            out[position] = UInt8(ascii: "0") + UInt8(magnitude % 10)
            magnitude /= 10
        }
        return count
    }

    mutating func bulk(_ text: String) {
        bulk(Array(text.utf8))
    }

    mutating func arrayHeader(_ count: Int) {
        buffer.writeInteger(UInt8(ascii: "*"))
        decimal(count)
        crlf()
    }

    private mutating func crlf() {
        buffer.writeInteger(UInt16(0x0D0A))
    }

    /// Writes the digits without building a `String`.
    private mutating func decimal(_ value: Int) {
        // A sign and at most 20 digits.
        _ = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 21) { out in
            var sign = 0
            if value < 0 {
                out[0] = UInt8(ascii: "-")
                sign = 1
            }
            return sign + Self.digits(value.magnitude, into: out, at: sign)
        }
    }
}
