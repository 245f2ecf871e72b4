@_spi(ConcordBackend) import Concord
import Testing

@testable import ConcordRedis

/// The read script's answer comes from the wire: every shape but a miss or the six fields it
/// sends is a typed protocol error, never a crash or a fresh read.
@Suite("Read script replies")
struct RedisReadReplyTests {
    static let version = CacheVersion(milliseconds: 1_800_000_000_000, counter: 2, node: "a").orderedText

    static func fields(epochFlag: RESPValue = .integer(1), expire: String = "") -> [RESPValue] {
        [.bulkString(Array(version.utf8)), .bulkString([1, 2, 3]), .bulkString(Array(expire.utf8)),
         .bulkString([]), .bulkString(Array(version.utf8)), epochFlag]
    }

    @Test func aMissIsNil() throws {
        #expect(try RedisDistributedCache.readReply(.null) == nil)
    }

    @Test func theSixFieldsGiveTheEnvelopeAndMarkers() throws {
        let read = try #require(try RedisDistributedCache.readReply(.array(Self.fields())))
        #expect(read.envelope == [1, 2, 3])
        #expect(read.markers.expire == nil && read.markers.clearRemove == nil)
        #expect(read.markers.clearExpire?.orderedText == Self.version)
        #expect(!read.markers.isFromAnotherEpoch)
        let other = try #require(try RedisDistributedCache.readReply(.array(Self.fields(epochFlag: .integer(0)))))
        #expect(other.markers.isFromAnotherEpoch)
    }

    /// A marker that is not a version is no marker (as a missing one), not an error.
    @Test func anUnreadableMarkerIsIgnored() throws {
        let read = try #require(try RedisDistributedCache.readReply(.array(Self.fields(expire: "not a version"))))
        #expect(read.markers.expire == nil)
    }

    @Test(arguments: [
        RESPValue.simpleString("OK"),
        .integer(1),
        .array([]),
        .array(Array(fields().prefix(5))),
        .array(fields() + [.integer(1)]),
        .array(fields(epochFlag: .bulkString(Array("1".utf8)))),
        .array([.bulkString([]), .null, .null, .null, .null, .integer(1)]),
    ])
    func anyOtherShapeIsAProtocolError(reply: RESPValue) {
        let error = #expect(throws: RedisError.self) { try RedisDistributedCache.readReply(reply) }
        #expect(error?.code == .protocolError)
    }
}
