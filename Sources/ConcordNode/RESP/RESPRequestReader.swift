/// Splits a client's byte stream into commands. A command is one RESP array of bulk strings
/// (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`), which is what every client library and redis-cli send;
/// anything else (inline commands, nested arrays, integers, null bulk strings) is a protocol
/// error, after which the connection must close, as Redis closes it.
///
/// The parser is the node's own rather than hiredis's reader: a request is a flat array of bulk
/// strings, and hiredis built a reply object per element (a malloc, a copy and a free each),
/// which `perf` showed as about 15% of the node's time on pipelined GETs. Here each argument is
/// copied once, from the read buffer into its own array (`next()`), or not at all for a command
/// the front end answers where it lies (`nextInPlace`).
///
/// Bounds: at most `maxArguments` per command (checked on the header, before anything is
/// reserved for them) and at most `maxBufferedBytes` received but not yet handed out, so
/// neither a huge multibulk length nor a huge bulk length makes the node allocate what the
/// client has not sent (a bulk length above the limit is refused on its header). Number lines
/// are at most 20 bytes. A command read in pieces keeps its parsed arguments, so each byte is
/// parsed once however the client splits its writes. Not thread-safe: one reader belongs to
/// one connection and is used on its event loop.
///
/// No NIO here, so the fuzz target (`scripts/fuzz.sh resp-request`) builds it on its own.
final class RESPRequestReader {
    let maxArguments: Int
    let maxBufferedBytes: Int
    /// Received bytes; those before `start` are parsed.
    private var bytes: [UInt8] = []
    private var start = 0
    /// The command being read: the count its header declared (0 between commands), the
    /// arguments read so far and their size.
    private var declared = 0
    private var arguments: [[UInt8]] = []
    private var argumentBytes = 0
    /// Storage for where the arguments of the command `nextInPlace` parses lie in `bytes`,
    /// kept from one command to the next.
    private var spans: [Range<Int>] = []

    /// A number line is a sign and at most 19 digits; anything longer is not one.
    private static let maxNumberLine = 20

    init(maxArguments: Int, maxBufferedBytes: Int) {
        self.maxArguments = max(1, maxArguments)
        self.maxBufferedBytes = maxBufferedBytes
    }

    /// Bytes received and not yet handed out as commands.
    var bufferedByteCount: Int {
        bytes.count - start + argumentBytes
    }

    func feed(_ incoming: UnsafeRawBufferPointer) throws(RESPProtocolError) {
        append(incoming)
        try checkBound()
    }

    func feed(_ incoming: [UInt8]) throws(RESPProtocolError) {
        incoming.withUnsafeBytes { append($0) }
        try checkBound()
    }

    private func append(_ incoming: UnsafeRawBufferPointer) {
        if start == bytes.count {
            bytes.removeAll(keepingCapacity: true)
            start = 0
        } else if start > 4096, start > bytes.count / 2 {
            // Drops parsed bytes once they are most of the buffer, so compaction stays linear.
            bytes.removeSubrange(0..<start)
            start = 0
        }
        incoming.withMemoryRebound(to: UInt8.self) { bytes.append(contentsOf: $0) }
    }

    private func checkBound() throws(RESPProtocolError) {
        if bufferedByteCount > maxBufferedBytes {
            throw RESPProtocolError("request larger than \(maxBufferedBytes) bytes")
        }
    }

    /// The next complete command's arguments, or nil when more bytes are needed. An empty array
    /// (`*0`) comes back as no arguments.
    func next() throws(RESPProtocolError) -> [[UInt8]]? {
        if declared == 0 {
            guard let count = try number(after: UInt8(ascii: "*"), what: "multibulk length") else { return nil }
            guard count >= 0, count <= maxArguments else {
                throw RESPProtocolError("invalid multibulk length (a command is one array of at most \(maxArguments) arguments)")
            }
            if count == 0 { return [] }
            declared = count
            arguments.reserveCapacity(min(count, 16))
        }
        while arguments.count < declared {
            let header = start
            guard let length = try number(after: UInt8(ascii: "$"), what: "bulk length") else { return nil }
            guard length >= 0 else { throw RESPProtocolError("invalid bulk length: a command's arguments are never null") }
            guard length <= maxBufferedBytes else { throw RESPProtocolError("request larger than \(maxBufferedBytes) bytes") }
            guard bytes.count - start >= length + 2 else {
                start = header
                return nil
            }
            let end = start + length
            guard bytes[end] == 13, bytes[end + 1] == 10 else {
                throw RESPProtocolError("expected CRLF after a bulk string of \(length) bytes")
            }
            arguments.append(Array(bytes[start..<end]))
            argumentBytes += length
            start = end + 2
        }
        let command = arguments
        arguments = []
        declared = 0
        argumentBytes = 0
        return command
    }

    /// Parses the next command where it lies in the buffer, without copying its arguments, when
    /// the whole command has arrived, and hands it to `answer`. When `answer` returns a result,
    /// the command is consumed and the result returned; when it returns nil (a command it leaves
    /// to the general path), nothing is consumed.
    ///
    /// Nil as well, with nothing consumed and no error, for anything but a whole, well-formed
    /// command of at least one argument: a command still arriving (or one `next()` has started),
    /// `*0`, or bytes that are not a command. `next()` then reads the same bytes and gives the
    /// same command, or the protocol error, it always gives. So this is only a quicker way
    /// through the commonest input; `next()` stays the one that decides.
    func nextInPlace<Result>(_ answer: (RESPArguments) -> Result?) -> Result? {
        guard declared == 0 else { return nil }
        // Parsed on a pointer, into spans held in a local, with `start` read once and written
        // once: each access to a stored property of a class is checked for exclusivity at run
        // time, which `perf` showed as a tenth of the node's time when every byte went
        // through them.
        var spans: [Range<Int>] = []
        swap(&spans, &self.spans)
        defer { swap(&spans, &self.spans) }
        let commandStart = start
        let maxArguments = maxArguments
        let maxLength = maxBufferedBytes
        return bytes.withUnsafeBufferPointer { bytes -> Result? in
            guard let end = Self.parseWhole(bytes, at: commandStart, maxArguments: maxArguments, maxLength: maxLength, into: &spans) else {
                return nil
            }
            let result = spans.withUnsafeBufferPointer { spans in answer(RESPArguments(bytes: bytes, spans: spans)) }
            if result != nil { start = end }
            return result
        }
    }

    /// The end of the whole command at `index`, its arguments' spans in `spans`; nil for anything
    /// `nextInPlace` leaves to `next()`: an incomplete command, `*0`, a count or length out of
    /// bounds, a sign, or any byte that `next()` would refuse.
    private static func parseWhole(
        _ bytes: UnsafeBufferPointer<UInt8>, at index: Int, maxArguments: Int, maxLength: Int, into spans: inout [Range<Int>]
    ) -> Int? {
        var index = index
        guard let count = wholeNumber(bytes, at: &index, after: UInt8(ascii: "*")), count > 0, count <= maxArguments else {
            return nil
        }
        spans.removeAll(keepingCapacity: true)
        for _ in 0..<count {
            guard let length = wholeNumber(bytes, at: &index, after: UInt8(ascii: "$")), length <= maxLength,
                  bytes.count - index >= length + 2
            else { return nil }
            let end = index + length
            guard bytes[end] == 13, bytes[end + 1] == 10 else { return nil }
            spans.append(index..<end)
            index = end + 2
        }
        return index
    }

    /// `<marker><digits>\r\n` at `index`, moving `index` past it; nil, leaving `index` as it
    /// was, for anything else, including a sign and more than 18 digits.
    @inline(__always)
    private static func wholeNumber(_ bytes: UnsafeBufferPointer<UInt8>, at index: inout Int, after marker: UInt8) -> Int? {
        guard index < bytes.count, bytes[index] == marker else { return nil }
        var position = index + 1
        var value = 0
        let digitsStart = position
        while position < bytes.count, bytes[position] &- 48 < 10 {
            value = value &* 10 &+ Int(bytes[position] &- 48)
            position += 1
        }
        let digits = position - digitsStart
        guard digits > 0, digits <= 18, position + 1 < bytes.count, bytes[position] == 13, bytes[position + 1] == 10 else {
            return nil
        }
        index = position + 2
        return value
    }

    /// Reads `<marker><integer>\r\n` and returns the integer, or nil (consuming nothing) when
    /// the line is not complete yet.
    private func number(after marker: UInt8, what: String) throws(RESPProtocolError) -> Int? {
        guard start < bytes.count else { return nil }
        let found = bytes[start]
        guard found == marker else {
            if marker == UInt8(ascii: "*") {
                throw RESPProtocolError("expected '*', got '\(Self.printable(found))': a command is an array of bulk strings (inline commands are not accepted)")
            }
            throw RESPProtocolError("expected '\(Self.printable(marker))', got '\(Self.printable(found))'")
        }
        var index = start + 1
        let limit = min(bytes.count, index + Self.maxNumberLine + 1)
        while index < limit, bytes[index] != 13 { index += 1 }
        guard index < limit else {
            if limit - (start + 1) > Self.maxNumberLine { throw RESPProtocolError("invalid \(what)") }
            return nil
        }
        guard index + 1 < bytes.count else { return nil }
        guard bytes[index + 1] == 10, let value = Self.integer(bytes[(start + 1)..<index]) else {
            throw RESPProtocolError("invalid \(what)")
        }
        start = index + 2
        return value
    }

    /// A decimal integer with an optional minus sign; nil for anything else or an overflow.
    private static func integer(_ digits: ArraySlice<UInt8>) -> Int? {
        var rest = digits[...]
        let negative = rest.first == UInt8(ascii: "-")
        if negative { rest = rest.dropFirst() }
        guard !rest.isEmpty else { return nil }
        var value = 0
        for digit in rest {
            guard digit >= 48, digit <= 57 else { return nil }
            let (shifted, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = shifted.addingReportingOverflow(Int(digit - 48))
            if overflow1 || overflow2 { return nil }
            value = sum
        }
        return negative ? -value : value
    }

    /// A byte for an error message: printable ASCII as is, anything else as its code.
    private static func printable(_ byte: UInt8) -> String {
        byte >= 32 && byte < 127 ? String(UnicodeScalar(byte)) : "\\x" + String(byte, radix: 16)
    }
}
