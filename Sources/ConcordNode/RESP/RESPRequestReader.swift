import CHiredis
import NIOCore

/// Splits a client's byte stream into commands with hiredis's reader. A command is one RESP
/// array of bulk strings; anything else (inline commands, nested arrays, integers) is a protocol
/// error, after which the connection must close, as Redis closes it.
///
/// Bounds: at most `maxArguments` per command (checked before hiredis allocates the array) and
/// at most `maxBufferedBytes` received but not yet parsed, so neither a huge multibulk length
/// nor a huge bulk length makes the node allocate what the client has not sent. Not
/// thread-safe: one reader belongs to one connection and is used on its event loop.
final class RESPRequestReader {
    private let reader: UnsafeMutablePointer<redisReader>
    private let limits: UnsafeMutablePointer<concord_request_limits>
    let maxBufferedBytes: Int

    init(maxArguments: Int, maxBufferedBytes: Int) throws(RESPProtocolError) {
        guard let reader = redisReaderCreate() else {
            throw RESPProtocolError("the node could not allocate a request reader")
        }
        // See `RESPReader`: keeps batches allocation-free and gives back large buffers.
        reader.pointee.maxbuf = 1 << 20
        limits = .allocate(capacity: 1)
        concord_limit_request_reader(reader, limits, Int32(clamping: maxArguments))
        self.reader = reader
        self.maxBufferedBytes = maxBufferedBytes
    }

    deinit {
        redisReaderFree(reader)
        limits.deallocate()
    }

    /// Bytes received and not yet handed out as commands.
    var bufferedByteCount: Int {
        reader.pointee.len - reader.pointee.pos
    }

    func feed(_ buffer: ByteBuffer) throws(RESPProtocolError) {
        let status = buffer.withUnsafeReadableBytes { bytes -> Int32 in
            guard let base = bytes.baseAddress, bytes.count > 0 else { return REDIS_OK }
            return redisReaderFeed(reader, base.assumingMemoryBound(to: CChar.self), bytes.count)
        }
        try check(status)
        if bufferedByteCount > maxBufferedBytes {
            throw RESPProtocolError("request larger than \(maxBufferedBytes) bytes")
        }
    }

    /// The next complete command's arguments, or nil when more bytes are needed. An empty array
    /// (`*0`) comes back as no arguments.
    func next() throws(RESPProtocolError) -> [[UInt8]]? {
        var raw: UnsafeMutableRawPointer?
        try check(redisReaderGetReply(reader, &raw))
        guard let raw else { return nil }
        defer { freeReplyObject(raw) }
        let reply = raw.assumingMemoryBound(to: redisReply.self).pointee
        guard reply.type == REDIS_REPLY_ARRAY else {
            throw RESPProtocolError("expected an array of bulk strings")
        }
        guard reply.elements > 0, let elements = reply.element else { return [] }
        var arguments: [[UInt8]] = []
        arguments.reserveCapacity(reply.elements)
        for index in 0..<reply.elements {
            guard let element = elements[index]?.pointee, element.type == REDIS_REPLY_STRING else {
                throw RESPProtocolError("expected an array of bulk strings")
            }
            arguments.append(Self.bytes(element))
        }
        return arguments
    }

    private func check(_ status: Int32) throws(RESPProtocolError) {
        guard status == REDIS_OK else {
            if limits.pointee.refused != 0 {
                throw RESPProtocolError("invalid multibulk length (a command is one array of at most \(limits.pointee.max_elements) arguments)")
            }
            let message = withUnsafeBytes(of: &reader.pointee.errstr) { bytes in
                String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
            }
            throw RESPProtocolError(message.isEmpty ? "invalid request" : message)
        }
    }

    private static func bytes(_ reply: redisReply) -> [UInt8] {
        guard reply.len > 0, let str = reply.str else { return [] }
        return [UInt8](unsafeUninitializedCapacity: reply.len) { buffer, count in
            UnsafeMutableRawPointer(buffer.baseAddress!).copyMemory(from: str, byteCount: reply.len)
            count = reply.len
        }
    }
}
