import Concord
import Crypto

/// A Lua script identified by its SHA-1, run with `EVALSHA` and loaded on demand.
public struct RedisScript: Sendable, Hashable {
    public let source: String
    /// Lower-case hex SHA-1 of `source`, the name Redis gives the script.
    public let sha1: String

    public init(_ source: String) {
        self.source = source
        self.sha1 = Self.hexDigest(Insecure.SHA1.hash(data: Array(source.utf8)))
    }
}

extension RedisScript {
    private static let hexDigits = Array("0123456789abcdef".utf8)

    /// Lower-case hex, as Redis prints script SHA-1s.
    static func hexDigest(_ digest: some Sequence<UInt8>) -> String {
        var text: [UInt8] = []
        for byte in digest {
            text.append(hexDigits[Int(byte >> 4)])
            text.append(hexDigits[Int(byte & 0xF)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}

extension RedisClient {
    /// Runs `script` with `EVALSHA`; when Redis answers `NOSCRIPT` (first use, `SCRIPT FLUSH`, or a
    /// restart that emptied the script cache) it loads the script and tries again.
    public func evalScript(
        _ script: RedisScript,
        keys: [RedisArgument] = [],
        arguments: [RedisArgument] = []
    ) async throws -> RESPValue {
        var command: [RedisArgument] = ["EVALSHA", RedisArgument(script.sha1), RedisArgument(keys.count)]
        command.reserveCapacity(3 + keys.count + arguments.count)
        command.append(contentsOf: keys)
        command.append(contentsOf: arguments)
        return try await Retry.run(
            backoff: .fixed(.zero),
            limit: .attempts(3),
            isRetryable: { ($0 as? RedisError)?.serverErrorPrefix == "NOSCRIPT" }
        ) { attempt in
            if attempt > 0, cluster != nil {
                // SCRIPT LOAD has no key, so in a cluster it could load the script on another
                // shard than the one that runs it; EVAL goes by the key and caches it there.
                var eval = command
                eval[0] = "EVAL"
                eval[1] = RedisArgument(script.source)
                return try await self.send(eval)
            }
            if attempt > 0 {
                _ = try await self.send("SCRIPT", "LOAD", RedisArgument(script.source))
            }
            return try await self.send(command)
        }
    }
}
