import ConcordChaos
import ConcordNode
import ConcordProcess
import Logging
import ConcordTesting
import Foundation
import Testing

/// The pending-write queue of a real `concord node` through a Redis outage: a full queue refuses
/// writes whole and never drops an acknowledged one.
@Suite("Node write queue", .serialized)
struct NodeWriteQueueTests {
    struct Stats: Decodable {
        struct Memory: Decodable { var entries: Int; var evictions: Int }
        struct AutoRecovery: Decodable { var queued: Int; var flushed: Int; var overflowed: Int; var refused: Int; var depth: Int; var bytes: Int }
        var memory: Memory
        var autoRecovery: AutoRecovery
    }

    static func stats(_ client: NodeClient) async throws -> Stats {
        try await client.stats().decode(Stats.self)
    }

    @Test("Redis down, queue full: 503 writeQueueFull, nothing applied; after Redis is back every acknowledged write is in Redis")
    func fullQueueRefusesAndKeepsEveryAcknowledgedWrite() async throws {
        try await withRedisServer { server in
            // The outage is a cut link, not a dead server, so Redis keeps what was flushed before.
            let link = try await FaultProxy.start(upstream: .init(host: "127.0.0.1", port: server.port), logger: Logger(label: "test.proxy"))
            do {
                try await withNode([
                    "--redis", "redis://127.0.0.1:\(link.port)", "--pending-max-entries", "3", "--reconnect-backoff-cap", "500ms", "--log-level", "info",
                ]) { node async throws in
                    let client = node.client()
                    #expect(await eventually { (try? await client.ready()) == true }, "\(node.output.all)")
                    link.set(.down)
                    #expect(await eventually { (try? await client.ready()) == false }, "\(node.output.all)")

                    for index in 1...3 {
                        let written = try await client.set("q\(index)", value: Array("value \(index)".utf8))
                        #expect(written.status == 200, "\(written.text)")
                    }
                    let refused = try await client.set("q4", value: Array("value 4".utf8))
                    #expect(refused.status == 503)
                    #expect(refused.errorCode == "writeQueueFull", "\(refused.text)")
                    #expect(try await client.get("q4").status == 404, "a refused write was applied")
                    #expect(try await client.delete("q1").errorCode == "writeQueueFull")
                    #expect(try await client.get("q1").text == "value 1", "a refused delete was applied")
                    // An invalidation is refused too, and says how far it got.
                    let invalidation = try await client.invalidate((1...2_000).map { "many-\($0)" })
                    #expect(invalidation.status == 503 && invalidation.errorCode == "writeQueueFull")
                    #expect(invalidation.text.contains("invalidated the first 0 of 2000 keys"), "\(invalidation.text)")

                    var stats = try await Self.stats(client)
                    #expect(stats.autoRecovery.depth == 3)
                    #expect(stats.autoRecovery.refused == 3)
                    #expect(stats.autoRecovery.overflowed == 0)
                    let warnings = node.output.all.split(separator: "\n").filter { $0.contains("pending L2 write queue is full") }
                    #expect(warnings.count == 1, "\(warnings)")

                    link.clear()
                    let flushed = try await eventually(timeout: .seconds(30)) {
                        let now = try await Self.stats(client)
                        return now.autoRecovery.depth == 0 && now.autoRecovery.flushed >= 3
                    }
                    stats = try await Self.stats(client)
                    #expect(flushed, "\(stats.autoRecovery) \(node.output.all)")
                    #expect(stats.autoRecovery.queued == 3)

                    // Another node, with an empty L1, finds every acknowledged write in Redis.
                    try await withNode(["--redis", server.url], name: "reader") { reader in
                        for index in 1...3 {
                            let read = try await reader.client().get("q\(index)")
                            #expect(read.text == "value \(index)", "q\(index): \(read.status) \(read.text)\n\(node.output.all)\n\(reader.output.all)")
                            #expect(read.source == "distributed")
                        }
                        #expect(try await reader.client().get("q4").status == 404)
                    }
                    // Room again: writes are taken.
                    #expect(try await client.set("q4", value: Array("value 4".utf8)).status == 200)
                }
            } catch {
                await link.stop()
                throw error
            }
            await link.stop()
        }
    }

    @Test("--memory-max-bytes bounds L1 by bytes: large values evict, small ones stay many")
    func memoryBoundedInBytes() async throws {
        try await withRedisServer { server in
            try await withNode(["--redis", server.url, "--memory-max-bytes", "4MiB", "--max-value-bytes", "512KiB", "--pending-max-bytes", "4MiB"]) { node async throws in
                let client = node.client()
                let value = [UInt8](repeating: 0x61, count: 256 * 1024)
                for index in 0..<64 {
                    #expect(try await client.set("big-\(index)", value: value).status == 200)
                }
                let stats = try await Self.stats(client)
                // 4 MiB holds at most 16 values of 256 KiB, whatever the entry count allows.
                #expect(stats.memory.entries <= 16, "\(stats.memory)")
                #expect(stats.memory.evictions >= 48, "\(stats.memory)")
                // Evicted from L1, still served from Redis.
                let first = try await client.get("big-0")
                #expect(first.body.count == value.count)
                for index in 0..<1_000 {
                    #expect(try await client.set("small-\(index)", value: Array("v".utf8)).status == 200)
                }
                #expect(try await Self.stats(client).memory.entries >= 1_000)
            }
        }
    }

    @Test("NFC and NFD spellings of a key: the NFD one is refused with 400 invalidKey, so they never collide")
    func unicodeKeysAreBytes() async throws {
        try await withRedisServer { server in
            try await withNode(["--redis", server.url]) { node async throws in
                let client = node.client()
                let nfc = try await client.request(.PUT, "/v1/cache/%C3%A9", body: Array("nfc".utf8))
                #expect(nfc.status == 200)
                let nfdAnswers = [
                    try await client.request(.PUT, "/v1/cache/e%CC%81", body: Array("nfd".utf8)),
                    try await client.request(.GET, "/v1/cache/e%CC%81"),
                    try await client.request(.DELETE, "/v1/cache/e%CC%81"),
                ]
                for nfd in nfdAnswers {
                    #expect(nfd.status == 400)
                    #expect(nfd.errorCode == "invalidKey", "\(nfd.text)")
                }
                let invalidate = try await client.request(.POST, "/v1/invalidate", body: Array(#"{"keys": ["e\u0301"]}"#.utf8))
                #expect(invalidate.errorCode == "invalidKey", "\(invalidate.text)")
                let read = try await client.request(.GET, "/v1/cache/%C3%A9")
                #expect(read.text == "nfc")
                #expect(read.header("Concord-Stale") == "false")
            }
        }
    }
}

