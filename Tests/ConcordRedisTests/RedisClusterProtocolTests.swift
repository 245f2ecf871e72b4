import Concord
import Testing

@testable import ConcordRedis

/// The Redis Cluster client's decisions without a socket: slots, topology replies, the election
/// between seeds, redirections and the per-command state machine.
@Suite("Cluster protocol: slots, topology, election, redirections")
struct RedisClusterProtocolTests {
    typealias Endpoint = RedisConfiguration.Cluster.Endpoint

    // MARK: Slots

    @Test func crc16AndSlotsMatchTheClusterSpecificationsVectors() {
        // The check value of CRC16/XMODEM, which the Redis Cluster specification quotes.
        #expect(ClusterHashSlot.crc16(Array("123456789".utf8)) == 0x31C3)
        // CLUSTER KEYSLOT answers of redis-server 7.0.
        #expect(ClusterHashSlot.slot(of: "foo") == 12_182)
        #expect(ClusterHashSlot.slot(of: "bar") == 5_061)
        #expect(ClusterHashSlot.slot(of: "hello") == 866)
        #expect(ClusterHashSlot.slot(of: "") == 0)
    }

    @Test func hashTagsFollowTheFirstBracePairAndIgnoreEmptyTags() {
        #expect(ClusterHashSlot.slot(of: "{user1000}.following") == ClusterHashSlot.slot(of: "{user1000}.followers"))
        #expect(ClusterHashSlot.slot(of: "foo{bar}{zap}") == ClusterHashSlot.slot(of: "bar"))
        // An empty tag hashes the whole key; "{{bar}}" hashes "{bar".
        #expect(ClusterHashSlot.slot(of: "foo{}{bar}") == Int(ClusterHashSlot.crc16(Array("foo{}{bar}".utf8)) & 0x3FFF))
        #expect(ClusterHashSlot.slot(of: "foo{{bar}}zap") == ClusterHashSlot.slot(of: "{bar"))
        #expect(ClusterHashSlot.slot(of: "no-close{brace") == Int(ClusterHashSlot.crc16(Array("no-close{brace".utf8)) & 0x3FFF))
        // Every key of a cache shares the slot of its prefix.
        let slot = ClusterHashSlot.slot(of: "concord:{orders}")
        #expect(ClusterHashSlot.slot(of: "concord:{orders}:e:42") == slot)
        #expect(ClusterHashSlot.slot(of: "concord:{orders}:bp") == slot)
    }

    @Test func commandsAreRoutedByTheirFirstKey() {
        #expect(ClusterCommandKeys.firstKey(of: ["GET", "k"]) == Array("k".utf8))
        #expect(ClusterCommandKeys.firstKey(of: ["EVALSHA", "abc", 2, "k1", "k2", "arg"]) == Array("k1".utf8))
        #expect(ClusterCommandKeys.firstKey(of: ["EVALSHA", "abc", 0, "arg"]) == nil)
        #expect(ClusterCommandKeys.firstKey(of: ["XREAD", "COUNT", 2, "STREAMS", "s", "0"]) == Array("s".utf8))
        #expect(ClusterCommandKeys.firstKey(of: ["PING"]) == nil)
        #expect(ClusterCommandKeys.firstKey(of: ["SCRIPT", "LOAD", "return 1"]) == nil)
        #expect(ClusterCommandKeys.firstKey(of: ["eval", "return 1", "1", "x"]) == Array("x".utf8))
    }

    // MARK: Topology replies

    static func text(_ value: String) -> RESPValue { .bulkString(Array(value.utf8)) }

    static func node(_ port: Int, role: String, ip: String = "127.0.0.1") -> RESPValue {
        var fields: [RESPValue] = [text("id"), text("id\(port)")]
        fields += [text("port"), RESPValue.integer(Int64(port))]
        fields += [text("ip"), text(ip), text("endpoint"), text(ip)]
        fields += [text("role"), text(role), text("health"), text("online")]
        return .array(fields)
    }

    static func shard(_ ranges: [(Int, Int)], _ nodes: [RESPValue]) -> RESPValue {
        .array([
            .bulkString(Array("slots".utf8)), .array(ranges.flatMap { [RESPValue.integer(Int64($0.0)), .integer(Int64($0.1))] }),
            .bulkString(Array("nodes".utf8)), .array(nodes),
        ])
    }

    static let threeShards = RESPValue.array([
        shard([(0, 5460)], [node(7000, role: "master"), node(7003, role: "replica")]),
        shard([(5461, 10922)], [node(7001, role: "master"), node(7004, role: "replica")]),
        shard([(10923, 16383)], [node(7002, role: "master")]),
        // A node that serves nothing yet (just added) is not a shard to route to.
        shard([], [node(7009, role: "master")]),
    ])

    @Test func clusterShardsRepliesBecomeASlotMap() throws {
        let map = try ClusterSlotMap.parseShards(Self.threeShards, askedHost: "127.0.0.1")
        #expect(map.shards.count == 3)
        #expect(map.unassignedSlots == 0)
        #expect(map.primary(forSlot: 0) == Endpoint(host: "127.0.0.1", port: 7000))
        #expect(map.primary(forSlot: 5461) == Endpoint(host: "127.0.0.1", port: 7001))
        #expect(map.primary(forSlot: 16383) == Endpoint(host: "127.0.0.1", port: 7002))
        #expect(map.shards[0].replicas == [Endpoint(host: "127.0.0.1", port: 7003)])
        #expect(map.fromShards)
    }

    @Test func clusterSlotsRepliesBecomeTheSameRoutingAndEmptyHostsMeanTheAskedNode() throws {
        func entry(_ low: Int, _ high: Int, _ ports: [Int], host: String = "127.0.0.1") -> RESPValue {
            .array([.integer(Int64(low)), .integer(Int64(high))] + ports.map { .array([.bulkString(Array(host.utf8)), .integer(Int64($0)), .bulkString(Array("id".utf8))]) })
        }
        let reply = RESPValue.array([
            entry(0, 5460, [7000, 7003]), entry(5461, 10922, [7001, 7004]), entry(10923, 16383, [7002], host: ""),
        ])
        let map = try ClusterSlotMap.parseSlots(reply, askedHost: "10.0.0.9")
        #expect(map.routing == (try ClusterSlotMap.parseShards(Self.threeShards, askedHost: "x")).routing.map {
            $0.primary.port == 7002 ? .init(slots: $0.slots, primary: Endpoint(host: "10.0.0.9", port: 7002)) : $0
        })
        #expect(!map.fromShards)
    }

    @Test(arguments: [
        RESPValue.simpleString("OK"),
        .array([.integer(1)]),
        .array([.array([.bulkString(Array("slots".utf8))])]),
        .array([shard([(0, 16384)], [node(7000, role: "master")])]),
        .array([shard([(10, 5)], [node(7000, role: "master")])]),
        .array([shard([(0, 100)], [node(7000, role: "master")]), shard([(50, 200)], [node(7001, role: "master")])]),
        .array([shard([(0, 100)], [node(70_000, role: "master")])]),
        .array([shard([(0, 100)], [node(7000, role: "replica")])]),
        .array([shard([(0, 100)], [node(7000, role: "master"), node(7001, role: "master")])]),
        .array([shard([(0, 100)], [node(7000, role: "leader")])]),
        .array([.array([.bulkString(Array("slots".utf8)), .array([.integer(0)]), .bulkString(Array("nodes".utf8)), .array([])])]),
        .array([.array([.integer(3), .integer(4)])]),
    ])
    func malformedClusterShardsRepliesAreTypedErrors(_ reply: RESPValue) {
        #expect(throws: RedisError.self) { try ClusterSlotMap.parseShards(reply, askedHost: "h") }
        do {
            _ = try ClusterSlotMap.parseShards(reply, askedHost: "h")
        } catch {
            #expect(error.code == .clusterTopologyInvalid)
        }
    }

    @Test(arguments: [
        RESPValue.null,
        .array([.array([.integer(0), .integer(10)])]),
        .array([.array([.integer(0), .integer(10), .array([.bulkString(Array("h".utf8))])])]),
        .array([.array([.integer(0), .integer(99_999), .array([.bulkString(Array("h".utf8)), .integer(1)])])]),
        .array([.array([.integer(0), .integer(10), .array([.bulkString(Array("h".utf8)), .bulkString(Array("port".utf8))])])]),
        .array([.array([.integer(-1), .integer(10), .array([.bulkString(Array("h".utf8)), .integer(7000)])])]),
    ])
    func malformedClusterSlotsRepliesAreTypedErrors(_ reply: RESPValue) {
        do {
            _ = try ClusterSlotMap.parseSlots(reply, askedHost: "h")
            Issue.record("parsed \(reply)")
        } catch {
            #expect(error.code == .clusterTopologyInvalid)
        }
    }

    // MARK: Election

    static func map(_ owners: [(ClosedRange<Int>, Int)], replicas: [Int] = []) throws -> ClusterSlotMap {
        try ClusterSlotMap(shards: owners.map {
            .init(primary: Endpoint(host: "127.0.0.1", port: $0.1), replicas: replicas.map { Endpoint(host: "127.0.0.1", port: $0) }, slots: [$0.0])
        })
    }

    @Test func theViewOfTheMajorityWinsEvenWhenReplicaListsDiffer() throws {
        let current = try Self.map([(0...8191, 7000), (8192...16383, 7001)])
        let sameRouting = try Self.map([(0...8191, 7000), (8192...16383, 7001)], replicas: [7005])
        let stale = try Self.map([(0...8191, 7000), (8192...16383, 7002)])
        let seed = { (port: Int) in Endpoint(host: "127.0.0.1", port: port) }
        let elected = try ClusterTopologyElection.elect([
            .init(node: seed(1), result: .success(current)),
            .init(node: seed(2), result: .success(stale)),
            .init(node: seed(3), result: .success(sameRouting)),
            .init(node: seed(4), result: .failure(RedisError(.connectionRefused, "down"))),
        ])
        #expect(elected.routing == current.routing)
    }

    @Test func noMajorityNoAnswerAndOnlyMalformedAnswersAreTypedErrors() throws {
        let seed = { (port: Int) in Endpoint(host: "127.0.0.1", port: port) }
        let a = try Self.map([(0...16383, 7000)])
        let b = try Self.map([(0...16383, 7001)])
        func code(_ answers: [ClusterTopologyElection.Answer]) -> RedisError.Code? {
            do {
                _ = try ClusterTopologyElection.elect(answers)
                return nil
            } catch {
                return error.code
            }
        }
        #expect(code([.init(node: seed(1), result: .success(a)), .init(node: seed(2), result: .success(b))]) == .clusterTopologyInconsistent)
        #expect(code([.init(node: seed(1), result: .failure(RedisError(.connectionRefused, "x")))]) == .clusterUnreachable)
        #expect(code([]) == .clusterUnreachable)
        #expect(
            code([
                .init(node: seed(1), result: .failure(RedisError(.clusterTopologyInvalid, "x"))),
                .init(node: seed(2), result: .failure(RedisError(.clusterTopologyInvalid, "y"))),
            ]) == .clusterTopologyInvalid)
        #expect(
            code([.init(node: seed(1), result: .failure(RedisError(.authenticationFailed, "WRONGPASS")))]) == .authenticationFailed)
    }

    // MARK: Redirections

    @Test func redirectionsAreParsedAndAnEmptyHostIsTheAnsweringNode() throws {
        #expect(try ClusterRedirection(errorMessage: "MOVED 3999 127.0.0.1:6381", answeredBy: "x") == .moved(slot: 3999, to: Endpoint(host: "127.0.0.1", port: 6381)))
        #expect(try ClusterRedirection(errorMessage: "ASK 12 10.1.1.1:7000", answeredBy: "x") == .ask(slot: 12, to: Endpoint(host: "10.1.1.1", port: 7000)))
        #expect(try ClusterRedirection(errorMessage: "MOVED 1 :7001", answeredBy: "10.0.0.5") == .moved(slot: 1, to: Endpoint(host: "10.0.0.5", port: 7001)))
        #expect(try ClusterRedirection(errorMessage: "MOVED 1 [::1]:7001", answeredBy: "x") == .moved(slot: 1, to: Endpoint(host: "::1", port: 7001)))
        #expect(try ClusterRedirection(errorMessage: "TRYAGAIN Multiple keys request during rehashing of slot", answeredBy: "x") == .tryAgain)
        #expect(try ClusterRedirection(errorMessage: "CLUSTERDOWN The cluster is down", answeredBy: "x") == .clusterDown)
        #expect(try ClusterRedirection(errorMessage: "WRONGTYPE Operation against a key", answeredBy: "x") == nil)
        for malformed in ["MOVED", "MOVED x 1.2.3.4:5", "MOVED 16384 h:1", "ASK 1 nohostport", "MOVED 1 h:0", "MOVED 1 h:99999"] {
            #expect(throws: RedisError.self) { try ClusterRedirection(errorMessage: malformed, answeredBy: "x") }
        }
    }

    @Test func aRedirectLoopEndsWithATypedErrorAfterTheCap() {
        var machine = ClusterRequestStateMachine(maxRedirects: 3, backoff: RetryBackoff(base: .milliseconds(10), cap: .milliseconds(40)))
        var random = SystemRandomNumberGenerator()
        var redirects = 0
        for _ in 0..<10 {
            switch machine.receive(.error("MOVED 5 127.0.0.1:7001"), answeredBy: "127.0.0.1", random: &random) {
            case .moved(let slot, let to):
                #expect(slot == 5 && to.port == 7001)
                redirects += 1
            case .fail(let error):
                #expect(error.code == .clusterRedirectLimit)
                #expect(redirects == 3)
                return
            default:
                Issue.record("unexpected action")
                return
            }
        }
        Issue.record("the loop never ended")
    }

    @Test func repliesCompleteAndAskTryAgainAndClusterDownAreFollowed() {
        var machine = ClusterRequestStateMachine(maxRedirects: 5, backoff: RetryBackoff(base: .milliseconds(10), cap: .milliseconds(40)))
        var random = SystemRandomNumberGenerator()
        guard case .ask(let to) = machine.receive(.error("ASK 5 127.0.0.1:7002"), answeredBy: "h", random: &random) else {
            Issue.record("ASK not followed")
            return
        }
        #expect(to.port == 7002)
        guard case .retry(let delay, let refresh) = machine.receive(.error("TRYAGAIN"), answeredBy: "h", random: &random) else {
            Issue.record("TRYAGAIN not retried")
            return
        }
        #expect(delay <= .milliseconds(10) && !refresh)
        guard case .retry(let second, let refreshAfterDown) = machine.receive(.error("CLUSTERDOWN"), answeredBy: "h", random: &random) else {
            Issue.record("CLUSTERDOWN not retried")
            return
        }
        #expect(second <= .milliseconds(20) && refreshAfterDown)
        guard case .complete(let reply) = machine.receive(.error("ERR wrong number of arguments"), answeredBy: "h", random: &random) else {
            Issue.record("an ordinary error must complete")
            return
        }
        #expect(reply == .error("ERR wrong number of arguments"))
        guard case .complete(.simpleString("OK")) = machine.receive(.simpleString("OK"), answeredBy: "h", random: &random) else {
            Issue.record("a value must complete")
            return
        }
        guard case .fail(let malformed) = machine.receive(.error("MOVED 99999 h:1"), answeredBy: "h", random: &random) else {
            Issue.record("a malformed MOVED must fail")
            return
        }
        #expect(malformed.code == .protocolError)
    }

    @Test func onlyCommandsThatWereNeverSentAreRetried() {
        var machine = ClusterRequestStateMachine(maxRedirects: 2, backoff: RetryBackoff(base: .milliseconds(10), cap: .milliseconds(40)))
        var random = SystemRandomNumberGenerator()
        guard case .retry(_, true) = machine.couldNotSend(RedisError(.notConnected, "down"), random: &random) else {
            Issue.record("a command that could not be sent is retried after a refresh")
            return
        }
        guard case .fail(let timeout) = machine.couldNotSend(RedisError(.timeout, "late"), random: &random) else {
            Issue.record("a timed-out command may have run and must not be retried")
            return
        }
        #expect(timeout.code == .timeout)
    }

    // MARK: URLs

    @Test func clusterURLsListTheSeeds() throws {
        let configuration = try RedisConfiguration(url: "redis+cluster://u:p%40ss@10.0.0.1:7000,10.0.0.2,[::1]:7002")
        #expect(configuration.cluster?.seeds == [
            Endpoint(host: "10.0.0.1", port: 7000), Endpoint(host: "10.0.0.2", port: 6379), Endpoint(host: "::1", port: 7002),
        ])
        #expect(configuration.username == "u" && configuration.password == "p@ss")
        #expect(configuration.tls == nil)
        #expect(try RedisConfiguration(url: "rediss+cluster://h:1").tls != nil)
        for bad in ["redis+cluster://h:1/2", "redis+cluster://", "redis+cluster://h:1,,h:2", "redis+cluster://h:0"] {
            #expect(throws: RedisError.self) { try RedisConfiguration(url: bad) }
        }
    }
}
