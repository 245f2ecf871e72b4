import Testing

@testable import ConcordNode

/// The RESP front end's own request parser, without a socket.
@Suite("RESP request reader")
struct RESPRequestReaderTests {
    static func commands(_ text: String, maxArguments: Int = 64, maxBufferedBytes: Int = 1 << 20) throws -> [[String]] {
        let reader = RESPRequestReader(maxArguments: maxArguments, maxBufferedBytes: maxBufferedBytes)
        try reader.feed(Array(text.utf8))
        var commands: [[String]] = []
        while let command = try reader.next() {
            commands.append(command.map { String(decoding: $0, as: UTF8.self) })
        }
        return commands
    }

    static func protocolError(_ text: String, maxArguments: Int = 64, maxBufferedBytes: Int = 1 << 20) -> String? {
        do {
            _ = try commands(text, maxArguments: maxArguments, maxBufferedBytes: maxBufferedBytes)
            return nil
        } catch {
            return "\(error)"
        }
    }

    @Test func pipelinedCommandsComeOutInOrderAndAnEmptyArrayAsNoArguments() throws {
        let text = "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*0\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n*1\r\n$4\r\nPING\r\n"
        #expect(try Self.commands(text) == [["GET", "k"], [], ["SET", "k", ""], ["PING"]])
    }

    @Test func valuesAreBinarySafe() throws {
        let reader = RESPRequestReader(maxArguments: 8, maxBufferedBytes: 1024)
        try reader.feed(Array("*2\r\n$4\r\nECHO\r\n$6\r\n".utf8) + [13, 10, 0, 255, 42, 13] + [13, 10])
        #expect(try reader.next() == [Array("ECHO".utf8), [13, 10, 0, 255, 42, 13]])
        #expect(try reader.next() == nil)
        #expect(reader.bufferedByteCount == 0)
    }

    @Test func aCommandSplitAtAnyByteReadsAsInOnePiece() throws {
        let bytes = Array("*3\r\n$3\r\nSET\r\n$11\r\nkey-\r\n-name\r\n$12\r\nvalue\r\nvalue\r\n*1\r\n$4\r\nPING\r\n".utf8)
        for first in 0...bytes.count {
            for second in first...bytes.count {
                let reader = RESPRequestReader(maxArguments: 8, maxBufferedBytes: 1024)
                var commands: [[[UInt8]]] = []
                for piece in [bytes[..<first], bytes[first..<second], bytes[second...]] {
                    try reader.feed(Array(piece))
                    while let command = try reader.next() { commands.append(command) }
                }
                #expect(commands == [[Array("SET".utf8), Array("key-\r\n-name".utf8), Array("value\r\nvalue".utf8)], [Array("PING".utf8)]], "split at \(first), \(second)")
                #expect(reader.bufferedByteCount == 0)
            }
        }
    }

    @Test(arguments: [
        ("PING\r\n", "expected '*', got 'P'"),
        ("*-1\r\n", "invalid multibulk length"),
        ("*x\r\n", "invalid multibulk length"),
        ("*\r\n", "invalid multibulk length"),
        ("*1\n$4\r\nPING\r\n", "invalid multibulk length"),
        ("*99999999999999999999\r\n", "invalid multibulk length"),
        ("*123456789012345678901234\r\n", "invalid multibulk length"),
        ("*1\r\n*1\r\n$4\r\nPING\r\n", "expected '$', got '*'"),
        ("*1\r\n:1\r\n", "expected '$', got ':'"),
        ("*1\r\n$-1\r\n", "invalid bulk length"),
        ("*1\r\n$1x\r\n", "invalid bulk length"),
        ("*1\r\n$4\r\nPINGxx", "expected CRLF after a bulk string of 4 bytes"),
        ("$4\r\nPING\r\n", "expected '*', got '$'"),
        ("*1\r\n\u{1}", "expected '$', got '\\x1'"),
    ])
    func malformedInputIsAProtocolError(input: String, message: String) {
        let error = Self.protocolError(input)
        #expect(error?.hasPrefix("Protocol error: " + message) == true, "\(input.debugDescription) → \(String(describing: error))")
    }

    @Test func moreArgumentsThanTheLimitAreRefusedOnTheHeader() {
        #expect(Self.protocolError("*5\r\n", maxArguments: 4)?.contains("at most 4 arguments") == true)
        #expect(Self.protocolError("*4\r\n", maxArguments: 4) == nil)
    }

    @Test func aBulkLongerThanTheBufferLimitIsRefusedOnItsHeaderBeforeItsBytesArrive() {
        #expect(Self.protocolError("*2\r\n$3\r\nGET\r\n$2000\r\n", maxBufferedBytes: 1024) == "Protocol error: request larger than 1024 bytes")
        #expect(Self.protocolError("*2\r\n$3\r\nGET\r\n$1000\r\n", maxBufferedBytes: 1024) == nil)
    }

    @Test func bytesReceivedButNotHandedOutAreBoundedAcrossFeeds() throws {
        let reader = RESPRequestReader(maxArguments: 8, maxBufferedBytes: 64)
        try reader.feed(Array("*2\r\n$3\r\nSET\r\n$40\r\n".utf8))
        #expect(try reader.next() == nil)
        try reader.feed(Array(repeating: 0x61, count: 30))
        #expect(try reader.next() == nil)
        #expect(throws: RESPProtocolError.self) { try reader.feed(Array(repeating: 0x61, count: 30)) }
    }

    // MARK: In place

    /// Reads every command as the connection handler does: in place when `nextInPlace` takes it
    /// (here, when `takes` says so of its first argument), through `next()` otherwise.
    static func readMixed(_ pieces: [ArraySlice<UInt8>], takes: @escaping ([UInt8]) -> Bool) throws -> (commands: [[[UInt8]]], inPlace: Int, reader: RESPRequestReader) {
        let reader = RESPRequestReader(maxArguments: 8, maxBufferedBytes: 1024)
        var commands: [[[UInt8]]] = []
        var inPlace = 0
        for piece in pieces {
            try reader.feed(Array(piece))
            while true {
                let taken: [[UInt8]]? = reader.nextInPlace { arguments in
                    let copied = (0..<arguments.count).map { Array(arguments[$0]) }
                    return takes(copied[0]) ? copied : nil
                }
                if let taken {
                    commands.append(taken)
                    inPlace += 1
                } else if let command = try reader.next() {
                    commands.append(command)
                } else {
                    break
                }
            }
        }
        return (commands, inPlace, reader)
    }

    @Test func commandsReadInPlaceAreTheCommandsNextGivesWhereverTheInputIsSplit() throws {
        let text = "*2\r\n$3\r\nGET\r\n$5\r\nk\r\n\r\n\r\n*0\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\nv1\r\n"
            + "*4\r\n$4\r\nmget\r\n$1\r\na\r\n$0\r\n\r\n$2\r\nbb\r\n*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nget\r\n$1\r\nk\r\n"
        let bytes = Array(text.utf8)
        let whole = try Self.commands(text).map { $0.map { Array($0.utf8) } }
        #expect(whole.count == 6)
        let isRead: ([UInt8]) -> Bool = { name in ["GET", "MGET"].contains(String(decoding: name, as: UTF8.self).uppercased()) }
        for split in 0...bytes.count {
            let read = try Self.readMixed([bytes[..<split], bytes[split...]], takes: isRead)
            #expect(read.commands == whole, "split at \(split)")
            // GET, MGET and the last get, unless the split cut one and `next()` began it.
            #expect(read.inPlace >= 2, "split at \(split)")
            #expect(read.reader.bufferedByteCount == 0)
        }
        let unsplit = try Self.readMixed([bytes[...]], takes: isRead)
        #expect(unsplit.inPlace == 3)
    }

    @Test func aCommandDeclinedInPlaceIsLeftWholeForNext() throws {
        let reader = RESPRequestReader(maxArguments: 8, maxBufferedBytes: 1024)
        try reader.feed(Array("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*1\r\n$4\r\nPING\r\n".utf8))
        var offered = 0
        let declined: Int? = reader.nextInPlace { arguments in
            offered += 1
            #expect(arguments.count == 2)
            #expect(Array(arguments[1]) == Array("k".utf8))
            #expect(arguments.isName(0, "GET"))
            #expect(!arguments.isName(0, "GETX"))
            #expect(!arguments.isName(1, "GET"))
            return nil
        }
        #expect(declined == nil)
        #expect(offered == 1)
        #expect(try reader.next() == [Array("GET".utf8), Array("k".utf8)])
        #expect(reader.nextInPlace { $0.count } == 1)
        #expect(try reader.next() == nil)
        #expect(reader.nextInPlace { $0.count } == nil)
    }

    @Test(arguments: [
        "PING\r\n", "*-1\r\n", "*x\r\n", "*1\n$4\r\nPING\r\n", "*1\r\n*1\r\n$4\r\nPING\r\n", "*1\r\n$-1\r\n",
        "*1\r\n$4\r\nPINGxx", "*2\r\n$3\r\nGET\r\n$2000\r\n", "*9\r\n", "*99999999999999999999\r\n",
    ])
    func malformedInputIsNeverTakenInPlaceAndNextStillRefusesIt(input: String) throws {
        let reader = RESPRequestReader(maxArguments: 8, maxBufferedBytes: 1024)
        try reader.feed(Array(input.utf8))
        #expect(reader.nextInPlace { _ -> Int? in
            Issue.record("offered a malformed command")
            return 1
        } == nil)
        let expected = Self.protocolError(input, maxArguments: 8, maxBufferedBytes: 1024)
        #expect(expected != nil)
        do {
            _ = try reader.next()
            Issue.record("next() read \(input.debugDescription)")
        } catch {
            #expect("\(error)" == expected)
        }
    }
}
