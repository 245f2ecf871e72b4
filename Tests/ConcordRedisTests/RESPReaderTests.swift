import Testing

@testable import ConcordRedis

@Suite("RESP reader (hiredis)")
struct RESPReaderTests {
    private func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    private func readAll(_ reader: RESPReader) throws -> [RESPValue] {
        var values: [RESPValue] = []
        while let value = try reader.next() { values.append(value) }
        return values
    }

    /// A reply that declares a huge array (found by the fuzz target: hiredis 0.14 would calloc
    /// 15 GB for it) is a protocol error, whether the array is the reply or nested in it, and
    /// whether one array or their sum is too large. Arrays within the bounds still read.
    @Test(arguments: [
        "*1888888888\r\n",
        "*1\r\n*1888888888\r\n",
        "*2\r\n*1048577\r\n",
        "*5\r\n*1048576\r\n",
    ])
    func aReplyDeclaringAHugeArrayIsAProtocolError(reply: String) throws {
        let reader = try RESPReader()
        let error = #expect(throws: RedisError.self) {
            try reader.feed(bytes(reply))
            _ = try readAll(reader)
            // Arrays within one bound but over the other only fail once their elements arrive.
            for _ in 0..<5 {
                try reader.feed(bytes("*1048576\r\n"))
                _ = try readAll(reader)
            }
        }
        #expect(error?.code == .protocolError)
    }

    @Test func anArrayWithinTheBoundsReads() throws {
        let reader = try RESPReader()
        let count = 1_000
        try reader.feed(bytes("*\(count)\r\n" + String(repeating: ":1\r\n", count: count)))
        #expect(try reader.next()?.array?.count == count)
    }

    @Test func replySplitAcrossFeeds() throws {
        let reader = try RESPReader()
        try reader.feed(bytes("$5\r\nhel"))
        #expect(try reader.next() == nil)
        try reader.feed(bytes("lo"))
        #expect(try reader.next() == nil)
        try reader.feed(bytes("\r\n"))
        #expect(try reader.next() == .bulkString(bytes("hello")))
        #expect(try reader.next() == nil)
    }

    @Test func nestedReplyFedOneByteAtATime() throws {
        let reader = try RESPReader()
        let wire = "*3\r\n:1\r\n*2\r\n$3\r\nfoo\r\n$-1\r\n+OK\r\n"
        var values: [RESPValue] = []
        for byte in bytes(wire) {
            try reader.feed([byte])
            values += try readAll(reader)
        }
        #expect(values == [.array([.integer(1), .array([.bulkString(bytes("foo")), .null]), .simpleString("OK")])])
    }

    @Test func manyRepliesInOneFeed() throws {
        let reader = try RESPReader()
        try reader.feed(bytes("+OK\r\n:-42\r\n:9223372036854775807\r\n$-1\r\n*-1\r\n-WRONGTYPE bad\r\n$0\r\n\r\n*0\r\n"))
        let values = try readAll(reader)
        #expect(
            values == [
                .simpleString("OK"), .integer(-42), .integer(.max), .null, .null, .error("WRONGTYPE bad"),
                .bulkString([]), .array([]),
            ])
    }

    @Test func nestedArrays() throws {
        let reader = try RESPReader()
        try reader.feed(bytes("*2\r\n*2\r\n:1\r\n:2\r\n*2\r\n*1\r\n$1\r\na\r\n-ERR inner\r\n"))
        #expect(
            try reader.next()
                == .array([.array([.integer(1), .integer(2)]), .array([.array([.bulkString(bytes("a"))]), .error("ERR inner")])]))
    }

    @Test func binarySafeBulk() throws {
        let reader = try RESPReader()
        let payload: [UInt8] = [0, 13, 10, 255, 36, 42, 0]
        try reader.feed(bytes("$7\r\n") + payload + bytes("\r\n"))
        #expect(try reader.next() == .bulkString(payload))
    }

    @Test func sixteenMebibyteBulkInChunks() throws {
        let reader = try RESPReader()
        let size = 16 * 1024 * 1024
        var payload = [UInt8](repeating: 0, count: size)
        for index in stride(from: 0, to: size, by: 4096) { payload[index] = UInt8(truncatingIfNeeded: index / 4096) }
        let wire = bytes("$\(size)\r\n") + payload + bytes("\r\n:7\r\n")
        var values: [RESPValue] = []
        var offset = 0
        while offset < wire.count {
            let end = min(offset + 65_536, wire.count)
            try reader.feed(Array(wire[offset..<end]))
            values += try readAll(reader)
            offset = end
        }
        #expect(values.count == 2)
        #expect(values.first == .bulkString(payload))
        #expect(values.last == .integer(7))
    }

    @Test(arguments: [
        "hello\r\n",  // unknown type byte
        "$abc\r\n",  // bad bulk length
        ":12x\r\n",  // bad integer
        "*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n",  // deeper than hiredis supports
    ])
    func garbageIsAProtocolError(_ wire: String) throws {
        let reader = try RESPReader()
        let error = #expect(throws: RedisError.self) {
            try reader.feed(bytes(wire))
            _ = try readAll(reader)
        }
        #expect(error?.code == .protocolError)
        #expect(error?.message.isEmpty == false)
    }

    @Test func validRepliesBeforeGarbageAreReturned() throws {
        let reader = try RESPReader()
        try reader.feed(bytes("+OK\r\n%%%\r\n"))
        #expect(try reader.next() == .simpleString("OK"))
        #expect(throws: RedisError.self) { try reader.next() }
    }

    @Test func encoderWritesBinarySafeBulkStrings() throws {
        var buffer = ByteBufferAllocatorForTests.buffer()
        RESPEncoder.encode(["SET", RedisArgument([0, 13, 10]), 42, -7, RedisArgument("é")], into: &buffer)
        let expected = bytes("*5\r\n$3\r\nSET\r\n$3\r\n") + [0, 13, 10] + bytes("\r\n$2\r\n42\r\n$2\r\n-7\r\n$2\r\n") + Array("é".utf8)
            + bytes("\r\n")
        #expect(Array(buffer.readableBytesView) == expected)

        // What we encode, hiredis reads back as the same array of bulk strings.
        let reader = try RESPReader()
        try reader.feed(Array(buffer.readableBytesView))
        #expect(
            try reader.next()
                == .array([
                    .bulkString(bytes("SET")), .bulkString([0, 13, 10]), .bulkString(bytes("42")), .bulkString(bytes("-7")),
                    .bulkString(Array("é".utf8)),
                ]))
    }

    @Test(arguments: [Int64.min, -1, 0, 9, 10, 99, 100, Int64.max])
    func encoderDecimal(_ value: Int64) {
        var buffer = ByteBufferAllocatorForTests.buffer()
        RESPEncoder.writeDecimal(value, into: &buffer)
        #expect(String(buffer: buffer) == String(value))
        #expect(RESPEncoder.decimalLength(value) == String(value).count)
    }
}
