import Concord
import ConcordTesting
import NIOCore
import Testing

@testable import ConcordNode

/// GET, MGET and EXISTS answered from the read buffer (`RESPCommandExecutor.executeInPlace`):
/// the same replies and the same L1 counts as the general path (`execute`), and nothing at
/// all for what it leaves to that path.
@Suite("RESP in-place reads")
struct RESPInPlaceReadTests {
    let clock = ManualClock()

    func makeCache(_ configure: (inout HybridCacheConfiguration) -> Void = { _ in }) throws -> HybridCache {
        var configuration = HybridCacheConfiguration(cacheName: "test", nodeID: "n1")
        configuration.defaultEntryOptions.duration = .seconds(10)
        configure(&configuration)
        return try HybridCache(configuration: configuration, clock: clock, logger: quietLogger)
    }

    /// A command's reply through `executeInPlace`, nil when it declined; awaited replies are awaited.
    static func inPlace(_ executor: RESPCommandExecutor, _ arguments: [[UInt8]], scopes: APIScope = []) async -> String? {
        var bytes: [UInt8] = []
        var spans: [Range<Int>] = []
        for argument in arguments {
            spans.append(bytes.count..<(bytes.count + argument.count))
            bytes += argument
        }
        var state = RESPConnectionState(id: 1)
        state.scopes = scopes
        var writer = RESPReplyWriter(buffer: ByteBuffer())
        let outcome = bytes.withUnsafeBufferPointer { bytes in
            spans.withUnsafeBufferPointer { spans in
                executor.executeInPlace(RESPArguments(bytes: bytes, spans: spans), state: state, into: &writer)
            }
        }
        guard let outcome else {
            #expect(writer.buffer.readableBytes == 0, "a declined command wrote nothing")
            return nil
        }
        return await reply(outcome, writer)
    }

    /// The same command's reply through `execute`.
    static func general(_ executor: RESPCommandExecutor, _ arguments: [[UInt8]], scopes: APIScope = []) async -> String {
        var state = RESPConnectionState(id: 1)
        state.scopes = scopes
        var writer = RESPReplyWriter(buffer: ByteBuffer())
        let outcome = executor.execute(arguments, state: &state, into: &writer)
        return await reply(outcome, writer)
    }

    static func reply(_ outcome: RESPCommandExecutor.Outcome, _ writer: RESPReplyWriter) async -> String {
        switch outcome {
        case .replied, .close:
            return String(buffer: writer.buffer)
        case .later(let work):
            #expect(writer.buffer.readableBytes == 0)
            return String(buffer: await work())
        }
    }

    static func bytes(_ arguments: String...) -> [[UInt8]] {
        arguments.map { Array($0.utf8) }
    }

    @Test func hitsMissesAndMultiKeyReadsAnswerAsTheGeneralPathAndCountTheSame() async throws {
        let cache = try makeCache()
        let executor = RESPCommandExecutor(cache: cache, token: nil)
        try await cache.set("k1", Array("v1".utf8))
        try await cache.set("key:000000000042", Array("a value\r\nwith CRLF".utf8))
        try await cache.set("empty", [UInt8]())
        let commands = [
            Self.bytes("GET", "k1"),
            Self.bytes("get", "key:000000000042"),
            Self.bytes("GET", "empty"),
            Self.bytes("GET", "absent"),
            Self.bytes("MGET", "k1", "absent", "empty", "key:000000000042"),
            Self.bytes("mGeT", "k1"),
            Self.bytes("EXISTS", "k1", "absent", "k1", "empty"),
            Self.bytes("exists", "absent"),
        ]
        for command in commands {
            let before = cache.statistics.memory
            let inPlace = await Self.inPlace(executor, command)
            let afterInPlace = cache.statistics.memory
            let general = await Self.general(executor, command)
            let afterGeneral = cache.statistics.memory
            #expect(inPlace == general, "\(command.map { String(decoding: $0, as: UTF8.self) })")
            #expect(afterInPlace.hits - before.hits == afterGeneral.hits - afterInPlace.hits)
            #expect(afterInPlace.misses - before.misses == afterGeneral.misses - afterInPlace.misses)
        }
        #expect(await Self.inPlace(executor, Self.bytes("GET", "k1")) == "$2\r\nv1\r\n")
        #expect(await Self.inPlace(executor, Self.bytes("MGET", "k1", "absent")) == "*2\r\n$2\r\nv1\r\n$-1\r\n")
        #expect(await Self.inPlace(executor, Self.bytes("EXISTS", "k1", "absent", "k1")) == ":2\r\n")
    }

    @Test func anEntryPastItsFreshnessIsNotServedInPlace() async throws {
        let cache = try makeCache()
        let executor = RESPCommandExecutor(cache: cache, token: nil)
        var options = CacheEntryOptions(duration: .seconds(10))
        options.memoryDuration = .seconds(1)
        try await cache.set("k", Array("v".utf8), options: options)
        #expect(await Self.inPlace(executor, Self.bytes("GET", "k")) == "$1\r\nv\r\n")
        clock.advance(by: .seconds(2))
        // L1's copy is past its freshness and there is no L2: both paths find nothing.
        let hitsBefore = cache.statistics.memory.hits
        #expect(await Self.inPlace(executor, Self.bytes("GET", "k")) == "$-1\r\n")
        #expect(await Self.general(executor, Self.bytes("GET", "k")) == "$-1\r\n")
        #expect(await Self.inPlace(executor, Self.bytes("EXISTS", "k")) == ":0\r\n")
        #expect(cache.statistics.memory.hits == hitsBefore)
        clock.advance(by: .seconds(20))
        #expect(await Self.inPlace(executor, Self.bytes("MGET", "k")) == "*1\r\n$-1\r\n")
    }

    @Test func aValueOfAnotherTypeIsTheGeneralPathsError() async throws {
        let cache = try makeCache()
        let executor = RESPCommandExecutor(cache: cache, token: nil)
        try await cache.set("text", "a string, not bytes")
        let inPlace = await Self.inPlace(executor, Self.bytes("GET", "text"))
        #expect(inPlace?.hasPrefix("-ERR ") == true)
        #expect(inPlace == (await Self.general(executor, Self.bytes("GET", "text"))))
    }

    @Test func whatTheGeneralPathMustAnswerIsDeclinedUntouched() async throws {
        let cache = try makeCache { $0.maxKeyBytes = 16 }
        let executor = RESPCommandExecutor(cache: cache, token: nil)
        try await cache.set("k", Array("v".utf8))
        let declined: [[[UInt8]]] = [
            Self.bytes("GET"),
            Self.bytes("GET", "k", "k"),
            Self.bytes("GET", ""),
            Self.bytes("GET", String(repeating: "k", count: 17)),
            Self.bytes("MGET", "k", ""),
            Self.bytes("EXISTS", "k", String(repeating: "k", count: 17)),
            Self.bytes("GET", "caf\u{E9}"),
            [Array("GET".utf8), [0xFF, 0xFE]],
            Self.bytes("GETX", "k"),
            Self.bytes("SET", "k", "v"),
            Self.bytes("PING"),
            Self.bytes("TTL", "k"),
        ]
        let hitsBefore = cache.statistics.memory.hits
        let missesBefore = cache.statistics.memory.misses
        for command in declined {
            #expect(await Self.inPlace(executor, command) == nil, "\(command.map { String(decoding: $0, as: UTF8.self) })")
        }
        #expect(cache.statistics.memory.hits == hitsBefore)
        #expect(cache.statistics.memory.misses == missesBefore)
        #expect(await Self.general(executor, Self.bytes("GET", "")) == "-ERR invalid key: the key is empty\r\n")
    }

    @Test func aConnectionThatMayNotReadIsLeftToTheGeneralPathsRefusal() async throws {
        let cache = try makeCache()
        try await cache.set("k", Array("v".utf8))
        let executor = RESPCommandExecutor(cache: cache, token: Array("secret".utf8))
        #expect(await Self.inPlace(executor, Self.bytes("GET", "k")) == nil)
        #expect(await Self.general(executor, Self.bytes("GET", "k")) == "-NOAUTH Authentication required.\r\n")
        #expect(await Self.inPlace(executor, Self.bytes("GET", "k"), scopes: [.read]) == "$1\r\nv\r\n")
        var readToken = AccessTokens()
        readToken.add(["reader"], scopes: .read, protecting: [.read, .admin])
        let tokens = RESPCommandExecutor(cache: cache, token: nil, accessTokens: readToken)
        #expect(await Self.inPlace(tokens, Self.bytes("GET", "k")) == nil)
        #expect(await Self.inPlace(tokens, Self.bytes("GET", "k"), scopes: [.read]) == "$1\r\nv\r\n")
    }

    @Test func keyBytesHashAsTheirStringsInThisBuild() {
        #expect(HybridCache.hashesKeyBytesAsStrings)
    }
}
