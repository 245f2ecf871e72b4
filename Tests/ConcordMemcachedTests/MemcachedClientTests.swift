import ConcordProcess
import Testing

@testable import ConcordMemcached

@Suite("Memcached client against a real memcached", .timeLimit(.minutes(2)))
struct MemcachedClientTests {
    @Test func setThenGetReturnsTheValueAndAMissIsNil() async throws {
        try await withMemcachedServers(1) { servers in
            try await withRunningClient(fastConfiguration(servers)) { client in
                #expect(try await client.get("absent") == nil)
                let outcome = try await client.set("greeting", value: bytes("hello"))
                guard case .stored(let cas) = outcome else { Issue.record("set answered \(outcome)"); return }
                let item = try #require(try await client.get("greeting"))
                #expect(item.value == bytes("hello"))
                #expect(item.cas == cas)
                _ = try await client.set("greeting", value: [])
                #expect(try await client.get("greeting")?.value == [])
            }
        }
    }

    @Test func binaryValuesWithCRLFInsideRoundTrip() async throws {
        try await withMemcachedServers(1) { servers in
            try await withRunningClient(fastConfiguration(servers)) { client in
                let value: [UInt8] = Array(bytes("VA 3\r\nEN\r\n")) + (0...255).map { UInt8($0) }
                _ = try await client.set("binary", value: value)
                #expect(try await client.get("binary")?.value == value)
            }
        }
    }

    @Test func compareAndSetStoresOnlyWithTheCurrentToken() async throws {
        try await withMemcachedServers(1) { servers in
            try await withRunningClient(fastConfiguration(servers)) { client in
                _ = try await client.set("k", value: bytes("v1"))
                let first = try #require(try await client.get("k"))
                #expect(try await client.set("k", value: bytes("v2"), cas: first.cas) != .exists)
                // The token moved on: a writer still holding the first one loses.
                #expect(try await client.set("k", value: bytes("v3"), cas: first.cas) == .exists)
                #expect(try await client.get("k")?.value == bytes("v2"))
                #expect(try await client.set("missing", value: bytes("x"), cas: first.cas) == .notFound)
            }
        }
    }

    @Test func addStoresOnlyWhenAbsent() async throws {
        try await withMemcachedServers(1) { servers in
            try await withRunningClient(fastConfiguration(servers)) { client in
                guard case .stored = try await client.set("once", value: bytes("a"), mode: .add) else {
                    Issue.record("the first add did not store"); return
                }
                #expect(try await client.set("once", value: bytes("b"), mode: .add) == .notStored)
                #expect(try await client.get("once")?.value == bytes("a"))
            }
        }
    }

    @Test func deleteHonoursTheCASTokenAndReportsAMissingKey() async throws {
        try await withMemcachedServers(1) { servers in
            try await withRunningClient(fastConfiguration(servers)) { client in
                _ = try await client.set("d", value: bytes("v"))
                let item = try #require(try await client.get("d"))
                #expect(try await client.delete("d", cas: item.cas &+ 1) == .exists)
                guard case .stored = try await client.delete("d", cas: item.cas) else { Issue.record("delete failed"); return }
                #expect(try await client.get("d") == nil)
                #expect(try await client.delete("d") == .notFound)
            }
        }
    }

    @Test func timeToLiveIsSentInSecondsAndReadBack() async throws {
        try await withMemcachedServers(1) { servers in
            try await withRunningClient(fastConfiguration(servers)) { client in
                _ = try await client.set("ttl", value: bytes("v"), timeToLive: .seconds(100))
                let response = try await client.send(MetaCommand(.get, key: "ttl", flags: ["t"]))
                let remaining = try #require(response.flag("t").flatMap { Int($0) })
                #expect((90...100).contains(remaining))
                _ = try await client.set("forever", value: bytes("v"))
                #expect(try await client.send(MetaCommand(.get, key: "forever", flags: ["t"])).flag("t") == "-1")
            }
        }
    }

    @Test func expiryRoundsUpToSecondsAndSendsLongTimesAsUnixTimes() {
        #expect(MemcachedClient.expiry(.zero, now: 1_000) == 0)
        #expect(MemcachedClient.expiry(.milliseconds(1), now: 1_000) == 1)
        #expect(MemcachedClient.expiry(.milliseconds(1_500), now: 1_000) == 2)
        #expect(MemcachedClient.expiry(.seconds(2_592_000), now: 1_000) == 2_592_000)
        #expect(MemcachedClient.expiry(.seconds(2_592_001), now: 1_000) == 2_593_001)
    }

    @Test func concurrentCallersOnTheSharedConnectionEachGetTheirOwnReply() async throws {
        try await withMemcachedServers(1) { servers in
            try await withRunningClient(fastConfiguration(servers)) { client in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for index in 0..<200 {
                        group.addTask { _ = try await client.set("p\(index)", value: bytes("value-\(index)")) }
                    }
                    try await group.waitForAll()
                }
                let mismatches = try await withThrowingTaskGroup(of: Int.self) { group in
                    for index in 0..<200 {
                        group.addTask { try await client.get("p\(index)")?.value == bytes("value-\(index)") ? 0 : 1 }
                    }
                    return try await group.reduce(0, +)
                }
                #expect(mismatches == 0)
            }
        }
    }

    @Test func quietBatchReturnsOnlyTheHitsMatchedByOpaqueToken() async throws {
        try await withMemcachedServers(1) { servers in
            try await withRunningClient(fastConfiguration(servers)) { client in
                for index in stride(from: 0, to: 100, by: 2) {
                    _ = try await client.set("q\(index)", value: bytes("v\(index)"))
                }
                let found = try await client.getMany((0..<100).map { "q\($0)" })
                #expect(found.count == 50)
                #expect(found.allSatisfy { key, item in item.value == bytes("v" + key.dropFirst()) })
                // The connection is still in step after the batch.
                #expect(try await client.get("q2")?.value == bytes("v2"))
            }
        }
    }

    @Test func invalidKeysAreRefusedBeforeSendingAndTheConnectionStaysInStep() async throws {
        try await withMemcachedServers(1) { servers in
            try await withRunningClient(fastConfiguration(servers)) { client in
                for key in ["", "with space", "line\r\nbreak", String(repeating: "k", count: 251)] {
                    let error = await memcachedError { _ = try await client.get(key) }
                    #expect(error?.code == .invalidKey)
                }
                let badFlag = await memcachedError { _ = try await client.send(MetaCommand(.get, key: "k", flags: ["v x"])) }
                #expect(badFlag?.code == .client)
                // A lone quiet command could leave the connection's responses out of step.
                let quiet = await memcachedError { _ = try await client.send(.set("k", value: bytes("v"), timeToLiveSeconds: 0, extra: ["q"])) }
                #expect(quiet?.code == .client)
                _ = try await client.set(String(repeating: "k", count: 250), value: bytes("max"))
                #expect(try await client.get(String(repeating: "k", count: 250))?.value == bytes("max"))
            }
        }
    }

    @Test func valuesOverTheItemSizeLimitGetATypedError() async throws {
        try await withMemcachedServers(1) { servers in
            try await withRunningClient(fastConfiguration(servers)) { client in
                let error = await memcachedError { _ = try await client.set("big", value: [UInt8](repeating: 1, count: 1_048_576)) }
                #expect(error?.code == .valueTooLarge)
                let big = try await client.get("big")
                #expect(big == nil)
            }
            // A client that believes in a bigger limit than the server's gets the server's refusal,
            // typed the same way, and the connection stays usable.
            var configuration = fastConfiguration(servers)
            configuration.itemSizeLimit = 4 * 1_048_576
            try await withRunningClient(configuration) { client in
                let error = await memcachedError { _ = try await client.set("big", value: [UInt8](repeating: 1, count: 2 * 1_048_576)) }
                #expect(error?.code == .valueTooLarge)
                _ = try await client.set("small", value: bytes("ok"))
                let small = try await client.get("small")
                #expect(small?.value == bytes("ok"))
            }
        }
    }

    @Test func serverCommandsAnswer() async throws {
        try await withMemcachedServers(1) { servers in
            try await withRunningClient(fastConfiguration(servers)) { client in
                #expect(try await client.version(server: 0).hasPrefix("1.6"))
                try await client.noop(server: 0)
                _ = try await client.set("gone", value: bytes("v"))
                try await client.flushAll(server: 0)
                #expect(try await client.get("gone") == nil)
            }
        }
    }
}
