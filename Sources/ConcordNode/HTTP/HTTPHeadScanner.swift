/// Frames HTTP/1 requests in raw bytes for `MemoryHitByteHandler`, strictly: a request is
/// framed only when its head is one that every HTTP/1.1 parser frames the same way (CRLF line
/// ends, token methods and header names, no folding, no Transfer-Encoding, at most one
/// all-digit Content-Length), so the bytes handed on to the HTTP decoder always start at a
/// request boundary. Anything else is `unframeable`, and the connection's bytes from there on
/// go to the decoder, which gives its own errors. Depends on the standard library only, so the
/// fuzz target compiles it alone.
enum HTTPHeadScanner {
    /// What the bytes at the start of a buffer hold.
    enum Scan: Equatable {
        /// The head has not ended yet and is within the bound: wait for more bytes.
        case incomplete
        /// Not framed strictly, or longer than the bound.
        case unframeable
        /// A whole head.
        case request(Head)
    }

    /// A framed request head.
    struct Head: Equatable {
        /// Bytes of the head, its empty last line included.
        var length: Int
        /// The body's length (Content-Length; 0 without one).
        var bodyLength: Int
        /// `GET`, HTTP/1.1, no body, no `Expect`, no `Connection` but `keep-alive`, at most one
        /// `Authorization`: a request whose answer depends on its target and token only.
        var isPlainGet: Bool
        /// HTTP/1.1 with no `Connection` field but `keep-alive`: the connection surely stays open
        /// after the answer. Otherwise the server may close it once the request is answered.
        var keepsAlive: Bool
        /// Where the request target lies in the scanned bytes.
        var target: Range<Int>
        /// Where the `Authorization` value lies (without surrounding whitespace), when there is one.
        var authorization: Range<Int>?
    }

    /// Scans the head at the start of `bytes`; `maxHeadBytes` bounds how long it may be.
    static func scan(_ bytes: UnsafeRawBufferPointer, maxHeadBytes: Int) -> Scan {
        var cursor = Cursor(bytes: bytes, maxHeadBytes: maxHeadBytes)
        // Request line: method SP target SP version CRLF.
        let method = cursor.index
        guard cursor.skip(while: isToken) > 0 else { return cursor.outcomeAtStop }
        let methodEnd = cursor.index
        guard cursor.take(UInt8(ascii: " ")) else { return cursor.outcomeAtStop }
        let target = cursor.index
        guard cursor.skip(while: { $0 > 0x20 && $0 < 0x7F }) > 0 else { return cursor.outcomeAtStop }
        let targetEnd = cursor.index
        guard cursor.take(UInt8(ascii: " ")) else { return cursor.outcomeAtStop }
        let version = cursor.index
        let versionLength = cursor.skip(while: { $0 != UInt8(ascii: "\r") && $0 != UInt8(ascii: "\n") })
        guard versionLength == 8 || cursor.endOfInput else { return .unframeable }
        guard cursor.lineEnd() != nil else { return cursor.outcomeAtStop }
        let isHTTP11 = matches(bytes, version, "HTTP/1.1")
        guard isHTTP11 || matches(bytes, version, "HTTP/1.0") else { return .unframeable }
        let isGet = methodEnd - method == 3 && matches(bytes, method, "GET")
        // CONNECT turns the connection into a tunnel.
        if methodEnd - method == 7, matches(bytes, method, "CONNECT") { return .unframeable }

        var bodyLength: Int?
        var isPlain = isGet && isHTTP11 && bytes[target] == UInt8(ascii: "/")
        var authorization: Range<Int>?
        var keepsAlive = isHTTP11
        while true {
            if cursor.endOfInput { return cursor.outcomeAtStop }
            if bytes[cursor.index] == UInt8(ascii: "\r") || bytes[cursor.index] == UInt8(ascii: "\n") {
                guard cursor.lineEnd() != nil else { return cursor.outcomeAtStop }
                break
            }
            // Field: name ":" OWS value OWS CRLF.
            let name = cursor.index
            guard cursor.skip(while: isToken) > 0 else { return cursor.outcomeAtStop }
            let nameEnd = cursor.index
            guard cursor.take(UInt8(ascii: ":")) else { return cursor.outcomeAtStop }
            cursor.skip(while: isWhitespace)
            let value = cursor.index
            cursor.skip(while: isFieldValueByte)
            var valueEnd = cursor.index
            guard cursor.lineEnd() != nil else { return cursor.outcomeAtStop }
            while valueEnd > value, isWhitespace(bytes[valueEnd - 1]) { valueEnd -= 1 }
            let nameLength = nameEnd - name
            if nameLength == 14, equalsIgnoringCase(bytes, name, "content-length") {
                guard bodyLength == nil, valueEnd > value, valueEnd - value <= 15 else { return .unframeable }
                var length = 0
                for index in value..<valueEnd {
                    guard isDigit(bytes[index]) else { return .unframeable }
                    length = length * 10 + Int(bytes[index] - UInt8(ascii: "0"))
                }
                bodyLength = length
                if length != 0 { isPlain = false }
            } else if nameLength == 17, equalsIgnoringCase(bytes, name, "transfer-encoding") {
                return .unframeable
            } else if nameLength == 7, equalsIgnoringCase(bytes, name, "upgrade") {
                return .unframeable
            } else if nameLength == 13, equalsIgnoringCase(bytes, name, "authorization") {
                if authorization != nil { isPlain = false }
                authorization = value..<valueEnd
            } else if nameLength == 10, equalsIgnoringCase(bytes, name, "connection") {
                if !(valueEnd - value == 10 && equalsIgnoringCase(bytes, value, "keep-alive")) {
                    isPlain = false
                    keepsAlive = false
                }
            } else if nameLength == 6, equalsIgnoringCase(bytes, name, "expect") {
                isPlain = false
            }
        }
        return .request(Head(
            length: cursor.index, bodyLength: bodyLength ?? 0, isPlainGet: isPlain, keepsAlive: keepsAlive, target: target..<targetEnd,
            authorization: authorization))
    }

    /// A position in the scanned bytes that never passes `limit`.
    private struct Cursor {
        let bytes: UnsafeRawBufferPointer
        let limit: Int
        /// Whether the bytes end before the bound, so that more of the head may still come.
        let mayGrow: Bool
        var index = 0

        init(bytes: UnsafeRawBufferPointer, maxHeadBytes: Int) {
            self.bytes = bytes
            self.limit = min(bytes.count, maxHeadBytes)
            self.mayGrow = bytes.count < maxHeadBytes
        }

        /// Whether the bytes (or the bound) ran out at the cursor.
        var endOfInput: Bool { index >= limit }

        /// What a scan that stopped here is: waiting for more bytes when it stopped because the
        /// bytes ran out below the bound; otherwise it met a byte it does not frame, or the bound.
        var outcomeAtStop: Scan { endOfInput && mayGrow ? .incomplete : .unframeable }

        @discardableResult
        mutating func skip(while accepts: (UInt8) -> Bool) -> Int {
            let start = index
            while index < limit, accepts(bytes[index]) { index += 1 }
            return index - start
        }

        mutating func take(_ byte: UInt8) -> Bool {
            guard index < limit, bytes[index] == byte else { return false }
            index += 1
            return true
        }

        /// Takes CRLF; nil (cursor unmoved) when it is not there.
        mutating func lineEnd() -> Int? {
            guard index + 1 < limit, bytes[index] == UInt8(ascii: "\r"), bytes[index + 1] == UInt8(ascii: "\n") else {
                // A CR at the very end may still be followed by its LF; anything else is not CRLF.
                if index < limit, bytes[index] == UInt8(ascii: "\r"), index + 1 == limit { index = limit }
                return nil
            }
            index += 2
            return index
        }
    }

    private static func isToken(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"), UInt8(ascii: "'"),
             UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"),
             UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            true
        default:
            false
        }
    }

    private static func isWhitespace(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t")
    }

    /// Visible ASCII, space, tab and obs-text; never CR, LF or another control byte.
    private static func isFieldValueByte(_ byte: UInt8) -> Bool {
        (byte >= 0x20 && byte != 0x7F) || byte == UInt8(ascii: "\t")
    }

    private static func isDigit(_ byte: UInt8) -> Bool {
        byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
    }

    private static func matches(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ text: StaticString) -> Bool {
        guard start + text.utf8CodeUnitCount <= bytes.count else { return false }
        for offset in 0..<text.utf8CodeUnitCount where bytes[start + offset] != text.utf8Start[offset] { return false }
        return true
    }

    /// `text` must be lower case.
    private static func equalsIgnoringCase(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ text: StaticString) -> Bool {
        guard start + text.utf8CodeUnitCount <= bytes.count else { return false }
        for offset in 0..<text.utf8CodeUnitCount {
            var byte = bytes[start + offset]
            if byte >= UInt8(ascii: "A"), byte <= UInt8(ascii: "Z") { byte |= 0x20 }
            if byte != text.utf8Start[offset] { return false }
        }
        return true
    }
}
