/// Where one response ends in the bytes a one-in-flight client has read so far: an HTTP/1.1
/// response framed by `Content-Length`, or one RESP reply to GET (a bulk string).
///
/// Only what the `node` suite's servers send is accepted; anything else is a typed error, so a
/// wrong answer can never pass as a fast one.
enum OneInFlightFraming: Sendable, Equatable {
    /// An HTTP/1.1 response whose status must be `expectedStatus`.
    case http(expectedStatus: Int)
    /// A RESP bulk string, the reply to a GET of a key that exists.
    case respBulkString

    /// What the bytes read so far hold.
    enum Scan: Sendable, Equatable {
        /// Not a whole response yet.
        case incomplete
        /// A whole response of this many bytes at the start of the buffer.
        case complete(length: Int)
    }

    /// The longest head accepted before the response counts as malformed.
    static let maxHeadBytes = 16_384

    /// Scans `bytes` (which start at a response's first byte).
    func scan(_ bytes: UnsafeRawBufferPointer) throws(OneInFlightClientError) -> Scan {
        switch self {
        case .http(let expectedStatus): try Self.scanHTTP(bytes, expectedStatus: expectedStatus)
        case .respBulkString: try Self.scanRESP(bytes)
        }
    }

    private static func scanHTTP(_ bytes: UnsafeRawBufferPointer, expectedStatus: Int) throws(OneInFlightClientError) -> Scan {
        guard let headEnd = find(crlfcrlf, in: bytes, from: 0) else {
            if bytes.count > maxHeadBytes { throw .badReply("no end of the HTTP head within \(maxHeadBytes) bytes") }
            return .incomplete
        }
        let lineEnd = find(crlf, in: bytes, from: 0) ?? headEnd
        // "HTTP/1.x SSS ..."
        guard lineEnd >= 12, hasPrefix(bytes, at: 0, "HTTP/1."), bytes[8] == UInt8(ascii: " "),
              let status = number(bytes, from: 9, to: 12)
        else {
            throw .badReply("not an HTTP/1 status line: \(text(bytes, 0, min(lineEnd, 80)))")
        }
        guard status == expectedStatus else { throw .unexpectedStatus(status) }
        var contentLength: Int?
        var position = lineEnd + 2
        while position < headEnd {
            let end = find(crlf, in: bytes, from: position) ?? headEnd
            if hasPrefix(bytes, at: position, "content-length:", ignoringCase: true) {
                var first = position + 15
                while first < end, bytes[first] == UInt8(ascii: " ") || bytes[first] == UInt8(ascii: "\t") { first += 1 }
                var last = end
                while last > first, bytes[last - 1] == UInt8(ascii: " ") || bytes[last - 1] == UInt8(ascii: "\t") { last -= 1 }
                guard let length = number(bytes, from: first, to: last) else {
                    throw .badReply("a bad Content-Length: \(text(bytes, position, min(end, position + 60)))")
                }
                contentLength = length
            } else if hasPrefix(bytes, at: position, "transfer-encoding:", ignoringCase: true) {
                throw .badReply("a response without Content-Length (\(text(bytes, position, min(end, position + 60))))")
            } else if !bytes[position..<end].contains(UInt8(ascii: ":")) {
                throw .badReply("a header line without a colon: \(text(bytes, position, min(end, position + 60)))")
            }
            position = end + 2
        }
        guard let contentLength else { throw .badReply("a response without Content-Length") }
        let total = headEnd + 4 + contentLength
        return bytes.count >= total ? .complete(length: total) : .incomplete
    }

    private static func scanRESP(_ bytes: UnsafeRawBufferPointer) throws(OneInFlightClientError) -> Scan {
        guard let first = bytes.first else { return .incomplete }
        guard let lineEnd = find(crlf, in: bytes, from: 1) else {
            if bytes.count > maxHeadBytes { throw .badReply("no end of the RESP line within \(maxHeadBytes) bytes") }
            return .incomplete
        }
        switch first {
        case UInt8(ascii: "$"):
            if lineEnd == 3, bytes[1] == UInt8(ascii: "-"), bytes[2] == UInt8(ascii: "1") {
                throw .badReply("a null reply: the key does not exist")
            }
            guard let length = number(bytes, from: 1, to: lineEnd) else {
                throw .badReply("a bad bulk length: \(text(bytes, 1, min(lineEnd, 40)))")
            }
            let total = lineEnd + 2 + length + 2
            guard bytes.count >= total else { return .incomplete }
            guard bytes[total - 2] == UInt8(ascii: "\r"), bytes[total - 1] == UInt8(ascii: "\n") else {
                throw .badReply("a bulk string not ended by CRLF")
            }
            return .complete(length: total)
        case UInt8(ascii: "-"):
            throw .serverError(text(bytes, 1, lineEnd))
        default:
            throw .badReply("not a bulk string reply: \(text(bytes, 0, min(lineEnd, 40)))")
        }
    }

    /// The decimal number in `bytes[from..<to]`: digits only, at most 9 of them.
    private static func number(_ bytes: UnsafeRawBufferPointer, from: Int, to: Int) -> Int? {
        guard from < to, to - from <= 9, to <= bytes.count else { return nil }
        var value = 0
        for index in from..<to {
            let digit = Int(bytes[index]) - 48
            guard digit >= 0, digit <= 9 else { return nil }
            value = value * 10 + digit
        }
        return value
    }

    private static func hasPrefix(_ bytes: UnsafeRawBufferPointer, at offset: Int, _ prefix: StaticString, ignoringCase: Bool = false) -> Bool {
        let count = prefix.utf8CodeUnitCount
        guard bytes.count - offset >= count else { return false }
        let expected = UnsafeRawBufferPointer(start: prefix.utf8Start, count: count)
        for index in 0..<count {
            var byte = bytes[offset + index]
            if ignoringCase, byte >= UInt8(ascii: "A"), byte <= UInt8(ascii: "Z") { byte += 32 }
            if byte != expected[index] { return false }
        }
        return true
    }

    /// Bytes for an error message.
    private static func text(_ bytes: UnsafeRawBufferPointer, _ from: Int, _ to: Int) -> String {
        String(decoding: UnsafeRawBufferPointer(rebasing: bytes[from..<max(from, to)]), as: UTF8.self)
    }

    private static let crlf: [UInt8] = [13, 10]
    private static let crlfcrlf: [UInt8] = [13, 10, 13, 10]

    /// The offset of `needle` in `bytes` at or after `start`.
    private static func find(_ needle: [UInt8], in bytes: UnsafeRawBufferPointer, from start: Int) -> Int? {
        guard bytes.count >= needle.count, start <= bytes.count - needle.count else { return nil }
        var index = start
        while index <= bytes.count - needle.count {
            if bytes[index] == needle[0] {
                var matched = true
                for offset in 1..<needle.count where bytes[index + offset] != needle[offset] {
                    matched = false
                    break
                }
                if matched { return index }
            }
            index += 1
        }
        return nil
    }
}
