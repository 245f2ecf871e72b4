import NIOCore
import Testing

@testable import ConcordMemcached

@Suite("Meta protocol codec")
struct MetaProtocolTests {
    static func parse(_ chunks: [String]) throws -> [MetaResponse] {
        var parser = MetaResponseParser()
        var responses: [MetaResponse] = []
        for chunk in chunks {
            parser.feed(ByteBuffer(string: chunk))
            while let response = try parser.next() { responses.append(response) }
        }
        return responses
    }

    @Test func commandsEncodeAsTheMetaProtocolSpells() {
        func text(_ command: MetaCommand) -> String {
            var buffer = ByteBuffer()
            command.encode(into: &buffer)
            return String(buffer: buffer)
        }
        #expect(text(.get("k")) == "mg k v c f\r\n")
        #expect(text(.set("k", value: Array("hi".utf8), timeToLiveSeconds: 30, cas: 7, mode: .add, extra: ["q"])) == "ms k 2 T30 c C7 ME q\r\nhi\r\n")
        #expect(text(.delete("k", cas: 9)) == "md k C9\r\n")
        #expect(text(MetaCommand(.noop)) == "mn\r\n")
        #expect(text(MetaCommand(.flushAll)) == "flush_all\r\n")
    }

    @Test func responsesSplitAnywhereAcrossReadsParseTheSame() throws {
        let stream = "VA 5 c42 f3\r\nab\r\nc\r\nHD c43\r\nEN\r\nNS\r\nEX c1\r\nNF\r\nMN\r\nOK\r\nVERSION 1.6.18\r\n"
        let whole = try Self.parse([stream])
        #expect(whole.count == 9)
        #expect(whole[0] == MetaResponse(status: .value, flags: [(UInt8(ascii: "c"), "42"), (UInt8(ascii: "f"), "3")], value: Array("ab\r\nc".utf8)))
        #expect(whole[0].cas == 42 && whole[0].clientFlags == 3)
        #expect(whole.map(\.status) == [.value, .stored, .miss, .notStored, .exists, .notFound, .noop, .ok, .version("1.6.18")])
        let bytes = Array(stream)
        for split in 1..<bytes.count {
            #expect(try Self.parse([String(bytes[..<split]), String(bytes[split...])]) == whole)
        }
    }

    @Test func errorRepliesAreTypedErrors() throws {
        let responses = try Self.parse(["ERROR\r\nCLIENT_ERROR bad data chunk\r\nSERVER_ERROR object too large for cache\r\nSERVER_ERROR out of memory\r\n"])
        #expect(throws: MemcachedError.self) { try responses[0].checked() }
        #expect((try? responses[1].checked()) == nil)
        do { _ = try responses[2].checked() } catch { #expect(error.code == .valueTooLarge) }
        do { _ = try responses[3].checked() } catch { #expect(error.code == .server && error.message == "out of memory") }
    }

    @Test func malformedResponsesAreProtocolErrorsNotTraps() {
        for garbage in ["WHAT\r\n", "VA x\r\n", "VA -1\r\n", "VA 2\r\nabcd\r\n", "HD\n", "\r\n", "VA 99999999999999999999\r\n", "HD \u{00E9}\r\n"] {
            #expect(throws: MemcachedError.self, "\(garbage.debugDescription)") { _ = try Self.parse([garbage]) }
        }
        #expect(throws: MemcachedError.self) { _ = try Self.parse([String(repeating: "x", count: 9000)]) }
    }

    @Test func aValueAnnouncedLargerThanTheLimitIsRefusedWithoutAllocating() {
        var parser = MetaResponseParser(maxValueSize: 1024)
        parser.feed(ByteBuffer(string: "VA 1025\r\n"))
        #expect(throws: MemcachedError.self) { _ = try parser.next() }
    }
}

@Suite("memcached:// URLs")
struct MemcachedURLTests {
    @Test func serverListsParseWithDefaultPorts() throws {
        let configuration = try MemcachedConfiguration(url: "memcached://h1:11311,h2,[::1]:11411?item-size-limit=2097152")
        #expect(configuration.servers == [.init(host: "h1", port: 11311), .init(host: "h2", port: 11211), .init(host: "::1", port: 11411)])
        #expect(configuration.itemSizeLimit == 2_097_152)
    }

    @Test func badURLsAreTypedErrors() {
        for url in ["redis://h", "memcached://", "memcached://h:0", "memcached://h:70000", "memcached://h:x", "memcached://a,,b",
                    "memcached://u@h", "memcached://h?nope=1", "memcached://h?item-size-limit=-1", "memcached://[::1"] {
            #expect(throws: MemcachedError.self, "\(url)") { _ = try MemcachedConfiguration(url: url) }
        }
    }
}
