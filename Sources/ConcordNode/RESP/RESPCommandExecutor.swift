import Concord
import NIOCore

/// Runs the commands of the node's RESP front end against its `HybridCache`: GET, SET, DEL,
/// UNLINK, EXISTS, MGET, MSET, EXPIRE, TTL and the connection commands clients send on their
/// own (PING, ECHO, HELLO 2, CLIENT SETNAME/SETINFO, COMMAND DOCS, AUTH, QUIT). Any other
/// command is refused with an error naming it and never forwarded to Redis: a raw write there
/// would bypass versions and invalidation.
///
/// A fresh L1 hit is answered on the connection's event loop, without suspending; everything
/// that needs L2 or a write comes back as work to await (`Outcome.later`).
struct RESPCommandExecutor: Sendable {
    /// What a command needs next.
    enum Outcome {
        /// The reply is written.
        case replied
        /// The reply is written; close the connection after it.
        case close
        /// Await this, which returns the reply.
        case later(@Sendable () async -> ByteBuffer)
    }

    let cache: HybridCache
    /// A password AUTH accepts for reading and writing (`--resp-token-file`); nil for none.
    let token: [UInt8]?
    /// The node's bearer tokens, which AUTH accepts with the scopes they grant over HTTP.
    let accessTokens: AccessTokens
    /// The scopes a connection must have authenticated for: reading and writing with a RESP
    /// password, otherwise what the node's token files protect for HTTP. Empty: an open port.
    let protectedScopes: APIScope

    init(cache: HybridCache, token: [UInt8]?, accessTokens: AccessTokens = AccessTokens()) {
        self.cache = cache
        self.token = token
        self.accessTokens = accessTokens
        let cacheScopes: APIScope = [.read, .admin]
        self.protectedScopes = token != nil ? cacheScopes : accessTokens.protectedScopes.intersection(cacheScopes)
    }

    /// Whether AUTH means anything here.
    var requiresAuthentication: Bool { !protectedScopes.isEmpty }

    /// Runs one command. `arguments` is never empty.
    func execute(_ arguments: [[UInt8]], state: inout RESPConnectionState, into writer: inout RESPReplyWriter) -> Outcome {
        let name = Self.commandName(arguments[0])
        do {
            if requiresAuthentication, state.scopes.isEmpty, name != "AUTH", name != "HELLO", name != "QUIT" {
                throw RESPCommandError("NOAUTH Authentication required.")
            }
            switch name {
            case "GET":
                try require(.read, for: name, state: state)
                return try get(arguments, into: &writer)
            case "MGET":
                try require(.read, for: name, state: state)
                return try mget(arguments, into: &writer)
            case "EXISTS":
                try require(.read, for: name, state: state)
                return try exists(arguments, into: &writer)
            case "TTL":
                try require(.read, for: name, state: state)
                return try ttl(arguments, into: &writer)
            case "SET":
                try require(.admin, for: name, state: state)
                return try set(arguments)
            case "MSET":
                try require(.admin, for: name, state: state)
                return try mset(arguments)
            case "DEL", "UNLINK":
                try require(.admin, for: name, state: state)
                return try delete(arguments, name: name)
            case "EXPIRE":
                try require(.admin, for: name, state: state)
                return try expire(arguments)
            case "PING":
                guard arguments.count <= 2 else { throw RESPCommandError.arity(name) }
                if arguments.count == 2 { writer.bulk(arguments[1]) } else { writer.simple("PONG") }
            case "ECHO":
                guard arguments.count == 2 else { throw RESPCommandError.arity(name) }
                writer.bulk(arguments[1])
            case "QUIT":
                writer.simple("OK")
                return .close
            case "AUTH": try auth(arguments, state: &state, into: &writer)
            case "HELLO": try hello(arguments, state: &state, into: &writer)
            case "CLIENT": try client(arguments, state: &state, into: &writer)
            case "COMMAND":
                guard arguments.count >= 2, Self.commandName(arguments[1]) == "DOCS" else {
                    let subcommand = arguments.count >= 2 ? String(decoding: arguments[1], as: UTF8.self) : ""
                    throw RESPCommandError("ERR unknown subcommand '\(Self.clipped(subcommand))' for 'command': the node answers COMMAND DOCS only")
                }
                // Clients ask for documentation to show hints; none is a valid answer.
                writer.arrayHeader(0)
            default:
                throw Self.unknown(arguments)
            }
        } catch let error as RESPCommandError {
            writer.error(error.reply)
        } catch {
            writer.error("ERR \(error)")
        }
        return .replied
    }

    // MARK: Reads

    private func get(_ arguments: [[UInt8]], into writer: inout RESPReplyWriter) throws -> Outcome {
        guard arguments.count == 2 else { throw RESPCommandError.arity("get") }
        let key = try key(arguments[1])
        switch try cache.tryGetFromMemory(key, as: [UInt8].self) {
        case .hit(let result):
            writer.bulk(result.value)
            return .replied
        case .pending(let pending):
            return Self.finishGet(key, continuing: pending, in: cache)
        }
    }

    /// A GET that L1 could not answer, finished beyond it.
    static func finishGet(_ key: String, continuing pending: PendingRead, in cache: HybridCache) -> Outcome {
        .later {
            await Self.reply { writer in
                writer.bulk(try await cache.getResult(key, as: [UInt8].self, continuing: pending)?.value)
            }
        }
    }

    /// Values of every key, from L1 where fresh; the rest in one awaited step.
    private func lookUp(_ keys: [String]) throws -> (values: [[UInt8]?], pending: [PendingKey]) {
        var values: [[UInt8]?] = []
        values.reserveCapacity(keys.count)
        var pending: [PendingKey] = []
        for (index, key) in keys.enumerated() {
            switch try cache.tryGetFromMemory(key, as: [UInt8].self) {
            case .hit(let result): values.append(result.value)
            case .pending(let read):
                values.append(nil)
                pending.append(PendingKey(index: index, key: key, read: read))
            }
        }
        return (values, pending)
    }

    /// A key of a multi-key read that L1 could not answer: its place among the keys and the
    /// read to finish.
    struct PendingKey: Sendable {
        let index: Int
        let key: String
        let read: PendingRead
    }

    private func mget(_ arguments: [[UInt8]], into writer: inout RESPReplyWriter) throws -> Outcome {
        guard arguments.count >= 2 else { throw RESPCommandError.arity("mget") }
        let keys = try arguments.dropFirst().map(key)
        let (found, pending) = try lookUp(keys)
        return Self.finishMGet(found, pending: pending, in: cache, into: &writer)
    }

    /// Writes an MGET's reply when L1 answered every key; otherwise the rest is awaited.
    static func finishMGet(_ found: [[UInt8]?], pending: [PendingKey], in cache: HybridCache, into writer: inout RESPReplyWriter) -> Outcome {
        if pending.isEmpty {
            writer.arrayHeader(found.count)
            for value in found { writer.bulk(value) }
            return .replied
        }
        return .later {
            await Self.reply { writer in
                var values = found
                for key in pending {
                    values[key.index] = try await cache.getResult(key.key, as: [UInt8].self, continuing: key.read)?.value
                }
                writer.arrayHeader(values.count)
                for value in values { writer.bulk(value) }
            }
        }
    }

    private func exists(_ arguments: [[UInt8]], into writer: inout RESPReplyWriter) throws -> Outcome {
        guard arguments.count >= 2 else { throw RESPCommandError.arity("exists") }
        let keys = try arguments.dropFirst().map(key)
        let (values, pending) = try lookUp(keys)
        return Self.finishExists(found: values.count { $0 != nil }, pending: pending, in: cache, into: &writer)
    }

    /// Writes an EXISTS reply when L1 answered every key; otherwise the rest is awaited.
    static func finishExists(found: Int, pending: [PendingKey], in cache: HybridCache, into writer: inout RESPReplyWriter) -> Outcome {
        if pending.isEmpty {
            writer.integer(found)
            return .replied
        }
        return .later {
            await Self.reply { writer in
                var count = found
                for key in pending where try await cache.getResult(key.key, as: [UInt8].self, continuing: key.read) != nil {
                    count += 1
                }
                writer.integer(count)
            }
        }
    }

    /// Seconds until the key's logical expiry, rounded like Redis does; -2 when there is no
    /// value, -1 when L1 cannot tell (a value it does not hold fresh).
    private func ttl(_ arguments: [[UInt8]], into writer: inout RESPReplyWriter) throws -> Outcome {
        guard arguments.count == 2 else { throw RESPCommandError.arity("ttl") }
        let key = try key(arguments[1])
        if let remaining = cache.memoryFreshness(key) {
            writer.integer(Self.roundedSeconds(remaining))
            return .replied
        }
        let cache = self.cache
        return .later {
            await Self.reply { writer in
                guard try await cache.getResult(key, as: [UInt8].self) != nil else {
                    writer.integer(-2)
                    return
                }
                writer.integer(cache.memoryFreshness(key).map(Self.roundedSeconds) ?? -1)
            }
        }
    }

    // MARK: Writes

    private func set(_ arguments: [[UInt8]]) throws -> Outcome {
        guard arguments.count >= 3 else { throw RESPCommandError.arity("set") }
        let key = try key(arguments[1])
        let value = try self.value(arguments[2])
        var lifetime: Duration?
        var condition: Bool?  // true: only if present (XX); false: only if absent (NX)
        var index = 3
        while index < arguments.count {
            switch Self.commandName(arguments[index]) {
            case "NX" where condition == nil: condition = false
            case "XX" where condition == nil: condition = true
            case let unit where (unit == "EX" || unit == "PX") && lifetime == nil && index + 1 < arguments.count:
                index += 1
                guard let amount = Int(String(decoding: arguments[index], as: UTF8.self)) else { throw RESPCommandError.notInteger }
                guard amount > 0, amount <= Int(Int32.max) * 1000 else {
                    throw RESPCommandError("ERR invalid expire time in 'set' command")
                }
                lifetime = unit == "EX" ? .seconds(amount) : .milliseconds(amount)
            default:
                throw RESPCommandError.syntax
            }
            index += 1
        }
        let options = entryOptions(lifetime: lifetime)
        let cache = self.cache
        let onlyIf = condition
        return .later {
            do {
                if let condition = onlyIf {
                    // Checked, then written: two nodes racing NX can both succeed, as both
                    // writes get versions and the newer one wins everywhere.
                    let present = try await cache.getResult(key, as: [UInt8].self) != nil
                    guard present == condition else { return Self.nilReply }
                }
                _ = try await cache.set(key, value, options: options)
                return Self.okReply
            } catch {
                return Self.errorReply(error)
            }
        }
    }

    private func mset(_ arguments: [[UInt8]]) throws -> Outcome {
        guard arguments.count >= 3, arguments.count % 2 == 1 else { throw RESPCommandError.arity("mset") }
        var pairs: [(String, [UInt8])] = []
        for index in stride(from: 1, to: arguments.count, by: 2) {
            pairs.append((try key(arguments[index]), try value(arguments[index + 1])))
        }
        let options = entryOptions(lifetime: nil)
        let cache = self.cache
        let writes = pairs
        return .later {
            await Self.reply { writer in
                for (key, value) in writes {
                    _ = try await cache.set(key, value, options: options)
                }
                writer.simple("OK")
            }
        }
    }

    private func delete(_ arguments: [[UInt8]], name: String) throws -> Outcome {
        guard arguments.count >= 2 else { throw RESPCommandError.arity(name) }
        let keys = try arguments.dropFirst().map(key)
        let cache = self.cache
        return .later {
            await Self.reply { writer in
                var removed = 0
                for key in keys {
                    if try await cache.getResult(key, as: [UInt8].self) != nil { removed += 1 }
                    _ = try await cache.remove(key)
                }
                writer.integer(removed)
            }
        }
    }

    /// Rewrites the value with the new lifetime (a new version, so every node sees it); a
    /// lifetime of zero or less removes the key, as in Redis.
    private func expire(_ arguments: [[UInt8]]) throws -> Outcome {
        guard arguments.count == 3 else { throw RESPCommandError.arity("expire") }
        let key = try key(arguments[1])
        guard let seconds = Int(String(decoding: arguments[2], as: UTF8.self)), seconds <= Int(Int32.max) else {
            throw RESPCommandError.notInteger
        }
        let options = entryOptions(lifetime: seconds > 0 ? .seconds(seconds) : nil)
        let cache = self.cache
        return .later {
            await Self.reply { writer in
                guard let current = try await cache.getResult(key, as: [UInt8].self) else {
                    writer.integer(0)
                    return
                }
                if seconds > 0 {
                    _ = try await cache.set(key, current.value, options: options)
                } else {
                    _ = try await cache.remove(key)
                }
                writer.integer(1)
            }
        }
    }

    private func entryOptions(lifetime: Duration?) -> CacheEntryOptions {
        var options = cache.configuration.defaultEntryOptions
        if let lifetime {
            options.duration = lifetime
            if let memory = options.memoryDuration, memory > lifetime { options.memoryDuration = lifetime }
        }
        return options
    }

    // MARK: Helpers

    /// Keys are UTF-8 strings in the cache, so a key that is not valid UTF-8 is refused rather
    /// than repaired (two different byte strings must never name one entry).
    private func key(_ bytes: [UInt8]) throws -> String {
        guard let key = String(validating: bytes, as: UTF8.self) else {
            throw RESPCommandError("ERR invalid key: keys must be valid UTF-8")
        }
        if key.isEmpty { throw RESPCommandError("ERR invalid key: the key is empty") }
        let limit = cache.configuration.maxKeyBytes
        if bytes.count > limit {
            throw RESPCommandError("ERR invalid key: the key is \(bytes.count) bytes; the limit is \(limit)")
        }
        return key
    }

    private func value(_ bytes: [UInt8]) throws -> [UInt8] {
        let limit = cache.configuration.maxValueBytes
        if bytes.count > limit {
            throw RESPCommandError("ERR value too large: \(bytes.count) bytes; the limit is \(limit)")
        }
        return bytes
    }

    /// Runs an awaited command and encodes its reply, or the error it threw.
    static func reply(_ body: (inout RESPReplyWriter) async throws -> Void) async -> ByteBuffer {
        var writer = RESPReplyWriter(buffer: ByteBuffer())
        do {
            try await body(&writer)
        } catch {
            return errorReply(error)
        }
        return writer.buffer
    }

    /// The reply to `error`: its own text for a `RESPCommandError`, else `ERR` and a description.
    static func errorReply(_ error: any Error) -> ByteBuffer {
        var writer = RESPReplyWriter(buffer: ByteBuffer())
        if let error = error as? RESPCommandError {
            writer.error(error.reply)
        } else {
            writer.error("ERR \(error)")
        }
        return writer.buffer
    }

    /// `+OK`, one buffer shared by every SET that answers it (never written to: a write would
    /// copy it): a buffer of its own per SET was two allocations.
    static let okReply: ByteBuffer = {
        var writer = RESPReplyWriter(buffer: ByteBuffer())
        writer.simple("OK")
        return writer.buffer
    }()

    /// `$-1`, the nil reply, shared like `okReply`.
    static let nilReply: ByteBuffer = {
        var writer = RESPReplyWriter(buffer: ByteBuffer())
        writer.bulk(nil as [UInt8]?)
        return writer.buffer
    }()

    /// The command or option name in upper case; names are ASCII, so other bytes stay as they
    /// are (and bytes that are not UTF-8 are repaired, as `String(decoding:)` does).
    ///
    /// Written straight into the string's storage: decoding a lazily mapped sequence went
    /// through generic metadata and conformance lookups on every command, about 9% of the
    /// node's time on pipelined GETs (`perf`).
    static func commandName(_ bytes: [UInt8]) -> String {
        String(unsafeUninitializedCapacity: bytes.count) { name in
            for index in bytes.indices {
                let byte = bytes[index]
                name[index] = byte >= 97 && byte <= 122 ? byte - 32 : byte
            }
            return bytes.count
        }
    }

    static func unknown(_ arguments: [[UInt8]]) -> RESPCommandError {
        let name = clipped(String(decoding: arguments[0], as: UTF8.self))
        let rest = arguments.dropFirst().prefix(3).map { "'\(clipped(String(decoding: $0, as: UTF8.self)))' " }.joined()
        return RESPCommandError("ERR unknown command '\(name)', with args beginning with: \(rest)")
    }

    /// Text from the client, cut short for an error message.
    static func clipped(_ text: String) -> String {
        text.count > 64 ? String(text.prefix(64)) + "..." : text
    }

    static func roundedSeconds(_ duration: Duration) -> Int {
        let milliseconds = Int(duration.components.seconds) * 1000 + Int(duration.components.attoseconds / 1_000_000_000_000_000)
        return max(0, (milliseconds + 500) / 1000)
    }

    static func constantTimeEqual(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
        var difference: UInt8 = lhs.count == rhs.count ? 0 : 1
        for index in 0..<max(lhs.count, rhs.count) {
            difference |= (index < lhs.count ? lhs[index] : 0) ^ (index < rhs.count ? rhs[index] : 0)
        }
        return difference == 0
    }
}
