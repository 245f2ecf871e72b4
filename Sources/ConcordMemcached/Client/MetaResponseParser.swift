import NIOCore

/// Parses meta-protocol responses incrementally from the bytes of one connection. A plain value:
/// feed it buffers, take whole responses; malformed input is a typed error, never a trap.
struct MetaResponseParser {
    private var buffer = ByteBuffer()
    /// The largest value accepted from the wire; a bigger announced size is a protocol error
    /// rather than an allocation.
    let maxValueSize: Int

    init(maxValueSize: Int = 256 * 1024 * 1024) {
        self.maxValueSize = maxValueSize
    }

    mutating func feed(_ bytes: ByteBuffer) {
        var bytes = bytes
        if buffer.readableBytes == 0 {
            buffer = bytes
        } else {
            if buffer.readerIndex > 65_536 { buffer.discardReadBytes() }
            buffer.writeBuffer(&bytes)
        }
    }

    /// The next whole response, or nil until more bytes arrive.
    mutating func next() throws(MemcachedError) -> MetaResponse? {
        let view = buffer.readableBytesView
        guard let newline = view.firstIndex(of: UInt8(ascii: "\n")) else {
            if view.count > 8192 { throw MemcachedError(.protocolError, "response line longer than 8 KiB") }
            return nil
        }
        guard newline > view.startIndex, view[newline - 1] == UInt8(ascii: "\r") else {
            throw MemcachedError(.protocolError, "response line does not end with CRLF")
        }
        let line = String(decoding: view[view.startIndex..<(newline - 1)], as: UTF8.self)
        let lineLength = newline + 1 - view.startIndex
        let words = line.split(separator: " ", omittingEmptySubsequences: true)
        guard let code = words.first else { throw MemcachedError(.protocolError, "empty response line") }

        func returnFlags(from index: Int) throws(MemcachedError) -> [(letter: UInt8, token: Substring)] {
            var flags: [(letter: UInt8, token: Substring)] = []
            for word in words.dropFirst(index) {
                guard let letter = word.utf8.first, letter < 0x80 else {
                    throw MemcachedError(.protocolError, "unreadable return flag '\(word)'")
                }
                flags.append((letter, word.dropFirst()))
            }
            return flags
        }

        let response: MetaResponse
        switch code {
        case "VA":
            guard words.count >= 2, let size = Int(words[1]), size >= 0, size <= maxValueSize else {
                throw MemcachedError(.protocolError, "VA without a valid size: '\(line.prefix(80))'")
            }
            guard view.count >= lineLength + size + 2 else { return nil }
            let dataStart = view.startIndex + lineLength
            guard view[dataStart + size] == UInt8(ascii: "\r"), view[dataStart + size + 1] == UInt8(ascii: "\n") else {
                throw MemcachedError(.protocolError, "VA value of \(size) bytes is not followed by CRLF")
            }
            let value = Array(view[dataStart..<(dataStart + size)])
            let flags = try returnFlags(from: 2)
            buffer.moveReaderIndex(forwardBy: lineLength + size + 2)
            return MetaResponse(status: .value, flags: flags, value: value)
        case "HD": response = MetaResponse(status: .stored, flags: try returnFlags(from: 1))
        case "EN": response = MetaResponse(status: .miss, flags: try returnFlags(from: 1))
        case "NF": response = MetaResponse(status: .notFound, flags: try returnFlags(from: 1))
        case "NS": response = MetaResponse(status: .notStored, flags: try returnFlags(from: 1))
        case "EX": response = MetaResponse(status: .exists, flags: try returnFlags(from: 1))
        case "MN": response = MetaResponse(status: .noop)
        case "OK": response = MetaResponse(status: .ok)
        case "VERSION": response = MetaResponse(status: .version(words.dropFirst().joined(separator: " ")))
        case "ERROR": response = MetaResponse(status: .error)
        case "CLIENT_ERROR": response = MetaResponse(status: .clientError(String(line.dropFirst("CLIENT_ERROR".count)).trimmingSpaces()))
        case "SERVER_ERROR": response = MetaResponse(status: .serverError(String(line.dropFirst("SERVER_ERROR".count)).trimmingSpaces()))
        default:
            throw MemcachedError(.protocolError, "unknown response '\(line.prefix(80))'")
        }
        buffer.moveReaderIndex(forwardBy: lineLength)
        return response
    }
}

extension String {
    fileprivate func trimmingSpaces() -> String {
        String(drop(while: { $0 == " " }))
    }
}
