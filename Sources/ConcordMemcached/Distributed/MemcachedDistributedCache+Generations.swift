import Foundation
import Synchronization

/// Generations: how the L2 notices that a memcached server lost its data (restart, flush, a
/// rejoin after failing), and tells the cache.
extension MemcachedDistributedCache {
    /// Learns a server's generation before it serves requests; a server back on the ring after
    /// failing is flushed first, unless another node already did (its generation changed).
    func prepare(_ server: MemcachedServerPreparation) async throws {
        let known = generations.withLock { $0[server.index] }
        if server.rejoining, let known {
            let found = try await server.send(.get(keyspace.generation))
            if found.status == .value, let value = found.value, String(decoding: value, as: UTF8.self) == known, let cas = found.cas {
                // Claim the flush with compare-and-set on the generation, so that of several nodes
                // seeing the server back at once exactly one flushes it; the others find the new
                // generation and only adopt it.
                let claimed = Self.newGeneration()
                let claim = try await server.send(.set(keyspace.generation, value: Array(claimed.utf8), timeToLiveSeconds: 0, cas: cas))
                if claim.status == .stored {
                    let flushed = try await server.send(MetaCommand(.flushAll))
                    guard flushed.status == .ok else { throw MemcachedError(.protocolError, "flush_all answered \(flushed.status)") }
                    _ = try await server.send(.set(keyspace.generation, value: Array(claimed.utf8), timeToLiveSeconds: 0))
                    logger.info("flushed a memcached server that rejoined the ring", metadata: ["concord.memcached.server": "\(server.server)"])
                }
            }
        }
        let generation = try await currentGeneration { try await server.send($0) }
        adopt(generation, server: server.index, reason: server.rejoining ? "it rejoined the ring" : "it restarted or was flushed")
    }

    /// The generation on a server, created (add, so concurrent nodes agree) when missing.
    func currentGeneration(_ send: (MetaCommand) async throws -> MetaResponse) async throws -> String {
        for _ in 0..<configuration.casRetryLimit {
            let read = try await send(.get(keyspace.generation))
            if read.status == .value, let value = read.value, !value.isEmpty {
                return String(decoding: value, as: UTF8.self)
            }
            let candidate = Self.newGeneration()
            let added = try await send(.set(keyspace.generation, value: Array(candidate.utf8), timeToLiveSeconds: 0, mode: .add))
            if added.status == .stored { return candidate }
        }
        throw MemcachedError(.casConflict, "could not agree on a generation for the server")
    }

    func adopt(_ generation: String, server index: Int, reason: String) {
        let previous = generations.withLock { generations in
            defer { generations[index] = generation }
            return generations[index]
        }
        guard let previous, previous != generation else { return }
        unsettledLosses.withLock { _ = $0.insert(index) }
        statistics.withLock { $0.dataLosses += 1 }
        let server = client.configuration.servers[index]
        logger.warning("memcached server lost its Concord data", metadata: [
            "concord.memcached.server": "\(server)", "concord.reason": .string(reason),
            "concord.memcached.generation": .string(generation),
        ])
        dataLostSink.withLock { $0 }?("memcached \(server): \(reason) (generation \(previous) → \(generation))")
    }

    /// Polls each connected server's generation: a `flush_all` keeps the connection, so only a
    /// read shows it. The poll also keeps a quiet connection busy, so a hung server is noticed.
    func checkGenerations() async {
        while !Task.isCancelled {
            for index in client.configuration.servers.indices where client.isConnected(server: index) {
                do {
                    let generation = try await currentGeneration { try await client.send($0, toServer: index) }
                    adopt(generation, server: index, reason: "it restarted or was flushed")
                } catch {
                    logger.debug("generation check failed", metadata: ["concord.error": "\(error)"])
                }
            }
            do { try await Task.sleep(for: configuration.generationCheckInterval) } catch { return }
        }
    }

    static func newGeneration() -> String {
        MemcachedKeyspace.hex((0..<6).map { _ in UInt8.random(in: 0...255) })
    }
}
