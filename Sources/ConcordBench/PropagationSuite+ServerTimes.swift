import ConcordRedis

/// What the write script and a PUBLISH cost inside Redis, read from its slow log.
extension PropagationSuite {
    /// Median time inside Redis of the coherence write script (an EVALSHA of one of its
    /// digests) and of a PUBLISH, in µs, from the slow log.
    static func serverTimes(_ client: RedisClient) async throws -> (writeScript: Double?, publish: Double?) {
        let samples = try await serverSamples(client)
        return (median(samples.writeScript), median(samples.publish))
    }

    /// The middle value, nil for none.
    static func median(_ values: [Int64]) -> Double? {
        values.isEmpty ? nil : Double(values.sorted()[values.count / 2])
    }

    /// Every time inside Redis, in µs, of the write script and of PUBLISH in the slow log.
    static func serverSamples(_ client: RedisClient) async throws -> (writeScript: [Int64], publish: [Int64]) {
        let reply = try await client.send("SLOWLOG", "GET", "-1")
        var script: [Int64] = []
        var publish: [Int64] = []
        for entry in reply.array ?? [] {
            guard let fields = entry.array, fields.count >= 4, let micros = fields[2].int,
                  let arguments = fields[3].array, let name = arguments.first?.string?.uppercased()
            else { continue }
            if name == "EVALSHA", let digest = arguments.dropFirst().first?.string, RedisDistributedCache.writeScriptDigests.contains(digest) {
                script.append(micros)
            }
            if name == "PUBLISH" { publish.append(micros) }
        }
        return (script, publish)
    }
}
