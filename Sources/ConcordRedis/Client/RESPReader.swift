import CHiredis
// The fuzz target (scripts/fuzz.sh) compiles this file without SwiftNIO.
#if canImport(NIOCore)
import NIOCore
#endif

/// Incremental RESP2 reply parser backed by hiredis's `redisReader`.
///
/// Bytes are fed as they arrive; `next()` returns complete replies one by one, already converted
/// to `RESPValue` with the C reply tree freed. Not thread-safe: one reader belongs to one
/// connection and is only touched from its event loop.
final class RESPReader {
    /// The most elements one reply array may declare, and all arrays of one reply together: far
    /// above any reply Concord asks for (an `MGET` or log read of thousands), far below what
    /// would exhaust memory (their tables are 8 bytes an element).
    static let maxArrayElements: Int64 = 1 << 20
    static let maxReplyElements: Int64 = 1 << 22

    private let reader: UnsafeMutablePointer<redisReader>
    private let limits: UnsafeMutablePointer<concord_reply_limits>

    init() throws(RedisError) {
        guard let reader = redisReaderCreate() else {
            throw RedisError(.protocolError, "hiredis could not allocate a reply reader")
        }
        // hiredis frees its internal buffer when it is empty and has more than `maxbuf` unused
        // bytes. 0 would never free it, so one 16 MiB value would stay allocated for the life of
        // the connection; the 16 KiB default would free and reallocate it after nearly every 64 KiB
        // socket read under pipelined load. 1 MiB keeps batches allocation-free and still gives
        // back the memory of large values.
        reader.pointee.maxbuf = 1 << 20
        limits = .allocate(capacity: 1)
        concord_limit_reply_reader(reader, limits, Self.maxArrayElements, Self.maxReplyElements)
        self.reader = reader
    }

    deinit {
        redisReaderFree(reader)
        limits.deallocate()
    }

    /// Appends bytes received from the server.
    func feed(_ bytes: UnsafeRawBufferPointer) throws(RedisError) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        try check(redisReaderFeed(reader, base.assumingMemoryBound(to: CChar.self), bytes.count))
    }

    #if canImport(NIOCore)
    func feed(_ buffer: ByteBuffer) throws(RedisError) {
        let status = buffer.withUnsafeReadableBytes { bytes -> Int32 in
            guard let base = bytes.baseAddress, bytes.count > 0 else { return REDIS_OK }
            return redisReaderFeed(reader, base.assumingMemoryBound(to: CChar.self), bytes.count)
        }
        try check(status)
    }
    #endif

    func feed(_ bytes: [UInt8]) throws(RedisError) {
        let status = bytes.withUnsafeBytes { bytes -> Int32 in
            guard let base = bytes.baseAddress, bytes.count > 0 else { return REDIS_OK }
            return redisReaderFeed(reader, base.assumingMemoryBound(to: CChar.self), bytes.count)
        }
        try check(status)
    }

    /// The next complete reply, or nil when more bytes are needed.
    func next() throws(RedisError) -> RESPValue? {
        var raw: UnsafeMutableRawPointer?
        try check(redisReaderGetReply(reader, &raw))
        guard let raw else { return nil }
        defer { freeReplyObject(raw) }
        return Self.convert(raw.assumingMemoryBound(to: redisReply.self))
    }

    /// Turns a hiredis status into a Swift error. Once hiredis reports an error the reader is
    /// unusable; the connection that owns it must be closed.
    private func check(_ status: Int32) throws(RedisError) {
        guard status == REDIS_OK else {
            if limits.pointee.refused != 0 {
                throw RedisError(
                    .protocolError,
                    "a reply declared an array beyond \(Self.maxArrayElements) elements, or \(Self.maxReplyElements) in all"
                )
            }
            let message = withUnsafeBytes(of: &reader.pointee.errstr) { bytes in
                let text = bytes.prefix { $0 != 0 }
                return String(decoding: text, as: UTF8.self)
            }
            throw RedisError(.protocolError, message.isEmpty ? "invalid RESP from server" : message)
        }
    }

    private static func convert(_ reply: UnsafeMutablePointer<redisReply>) -> RESPValue {
        let reply = reply.pointee
        switch reply.type {
        case REDIS_REPLY_STRING:
            return .bulkString(bytes(reply))
        case REDIS_REPLY_STATUS:
            return .simpleString(String(decoding: UnsafeRawBufferPointer(start: reply.str, count: reply.len), as: UTF8.self))
        case REDIS_REPLY_ERROR:
            return .error(String(decoding: UnsafeRawBufferPointer(start: reply.str, count: reply.len), as: UTF8.self))
        case REDIS_REPLY_INTEGER:
            return .integer(Int64(reply.integer))
        case REDIS_REPLY_ARRAY:
            guard reply.elements > 0, let elements = reply.element else { return .array([]) }
            var values: [RESPValue] = []
            values.reserveCapacity(reply.elements)
            for index in 0..<reply.elements {
                if let element = elements[index] {
                    values.append(convert(element))
                } else {
                    values.append(.null)
                }
            }
            return .array(values)
        default:
            // REDIS_REPLY_NIL: hiredis reports both `$-1` and `*-1` this way.
            return .null
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
