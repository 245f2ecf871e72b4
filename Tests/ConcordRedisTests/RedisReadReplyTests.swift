@_spi(ConcordBackend) import Concord
import Testing

@testable import ConcordRedis

/// The read script's answer comes from the wire: every shape but a miss or the eight fields it
/// sends is a typed protocol error, never a crash or a fresh read.
@Suite("Read script replies")
struct RedisReadReplyTests {
    static let version = CacheVersion(milliseconds: 1_800_000_000_000, counter: 2, node: "a").orderedText

    static func fields(epochFlag: RESPValue = .integer(1), expire: String = "", headEpoch: String = "e1", headSequence: String = "42") -> [RESPValue] {
        [.bulkString(Array(version.utf8)), .bulkString([1, 2, 3]), .bulkString(Array(expire.utf8)),
         .bulkString([]), .bulkString(Array(version.utf8)), epochFlag,
         .bulkString(Array(headEpoch.utf8)), .bulkString(Array(headSequence.utf8))]
    }

    @Test func aMissIsNil() throws {
        #expect(try RedisDistributedCache.readReply(.null) == nil)
    }

    @Test func theEightFieldsGiveTheEnvelopeMarkersAndHead() throws {
        let read = try #require(try RedisDistributedCache.readReply(.array(Self.fields())))
        #expect(read.envelope == [1, 2, 3])
        #expect(read.markers.expire == nil && read.markers.clearRemove == nil)
        #expect(read.markers.clearExpire?.orderedText == Self.version)
        #expect(!read.markers.isFromAnotherEpoch)
        #expect(read.logHead == BackplaneHead(epoch: "e1", sequence: 42))
        let other = try #require(try RedisDistributedCache.readReply(.array(Self.fields(epochFlag: .integer(0)))))
        #expect(other.markers.isFromAnotherEpoch)
    }

    /// A marker that is not a version is no marker (as a missing one), not an error.
    @Test func anUnreadableMarkerIsIgnored() throws {
        let read = try #require(try RedisDistributedCache.readReply(.array(Self.fields(expire: "not a version"))))
        #expect(read.markers.expire == nil)
    }

    /// A missing head (evicted, lost) or one whose number is not a number tells nothing about
    /// the entry: the read stands without a head, as before the head was read.
    @Test(arguments: [("", "42"), ("e1", ""), ("e1", "-3"), ("e1", "forty-two")])
    func aMissingOrUnreadableHeadIsNoHead(epoch: String, sequence: String) throws {
        let read = try #require(try RedisDistributedCache.readReply(.array(Self.fields(headEpoch: epoch, headSequence: sequence))))
        #expect(read.logHead == nil)
        #expect(read.envelope == [1, 2, 3])
    }

    @Test(arguments: [
        RESPValue.simpleString("OK"),
        .integer(1),
        .array([]),
        .array(Array(fields().prefix(5))),
        .array(Array(fields().prefix(6))),
        .array(Array(fields().prefix(7))),
        .array(Array(fields().prefix(6)) + [.array([]), .bulkString(Array("1".utf8))]),
        .array(fields() + [.integer(1)]),
        .array(fields(epochFlag: .bulkString(Array("1".utf8)))),
        .array([.bulkString([]), .null, .null, .null, .null, .integer(1), .null, .null]),
    ])
    func anyOtherShapeIsAProtocolError(reply: RESPValue) {
        let error = #expect(throws: RedisError.self) { try RedisDistributedCache.readReply(reply) }
        #expect(error?.code == .protocolError)
    }
}
