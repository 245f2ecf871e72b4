import Concord
import ConcordRedis
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization

/// A Memcached client over the meta text protocol: one pipelined connection per server, each
/// kept alive by a reconnect supervisor in `run()`, and keys spread over the servers on a ketama
/// ring compatible with libmemcached's.
///
/// A server whose connection fails leaves the ring, so its keys move to the others; it rejoins
/// once it answers again. Requests to a key whose server is down fail fast with `.notConnected`.
public final class MemcachedClient: Service, Sendable {
    private struct Ring {
        var continuum: KetamaContinuum
        /// Continuum server index → index into `configuration.servers`.
        var members: [Int]
    }

    public let configuration: MemcachedConfiguration
    let drivers: [MemcachedServerDriver]
    private let ring: Mutex<Ring>
    /// The ring with every configured server, whatever their state: where a key lives when all are up.
    private let homeRing: Ring
    private let logger: Logger

    public init(
        configuration: MemcachedConfiguration = .init(),
        logger: Logger = Logger(label: "concord.memcached"),
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) {
        self.configuration = configuration
        self.logger = logger
        self.drivers = configuration.servers.enumerated().map { index, server in
            MemcachedServerDriver(index: index, server: server, configuration: configuration, logger: logger, eventLoop: eventLoopGroup.next())
        }
        self.homeRing = Self.makeRing(configuration.servers, included: Array(configuration.servers.indices))
        self.ring = Mutex(homeRing)
    }

    private static func makeRing(_ servers: [MemcachedConfiguration.Server], included: [Int]) -> Ring {
        let members = included
        let continuum = KetamaContinuum(servers: members.map {
            KetamaContinuum.Server(host: servers[$0].host, port: servers[$0].port, weight: servers[$0].weight)
        })
        return Ring(continuum: continuum, members: members)
    }

    // MARK: Running

    /// Connects to every server and reconnects until cancelled or a graceful shutdown; call it once.
    public func run() async throws {
        await run(prepare: { _ in })
    }

    /// `run()` with a hook on each new connection, before it serves requests (the L2 checks the
    /// server's generation there).
    package func run(prepare: @escaping @Sendable (MemcachedServerPreparation) async throws -> Void) async {
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                for driver in self.drivers {
                    group.addTask {
                        await driver.run(
                            prepare: { connection, rejoining in
                                try await prepare(MemcachedServerPreparation(
                                    index: driver.index, server: driver.server, rejoining: rejoining, connection: connection))
                            },
                            membershipChanged: { self.rebuildRing() }
                        )
                    }
                }
            }
        }
    }

    private func rebuildRing() {
        let included = drivers.filter { !$0.isEjected }.map(\.index)
        let members = ring.withLock { ring in
            ring = Self.makeRing(configuration.servers, included: included)
            return ring.members
        }
        logger.info("memcached ring changed", metadata: [
            "concord.memcached.servers": "\(members.map { configuration.servers[$0].description })",
        ])
    }

    // MARK: Placement

    /// The index (into `configuration.servers`) of the server that holds `key` now; nil when
    /// every server is off the ring.
    public func server(for key: String) -> Int? {
        // One server on the ring owns every key: no hash to compute.
        let single: Int?? = ring.withLock { ring in ring.members.count <= 1 ? .some(ring.members.first) : nil }
        if let single { return single }
        let hash = KetamaContinuum.hash(key.utf8)
        return ring.withLock { ring in ring.continuum.server(forHash: hash).map { ring.members[$0] } }
    }

    /// The index of the server that holds `key` while every server is up (its home).
    public func homeServer(for key: String) -> Int? {
        if homeRing.members.count <= 1 { return homeRing.members.first }
        return homeRing.continuum.server(forHash: KetamaContinuum.hash(key.utf8)).map { homeRing.members[$0] }
    }

    /// Servers currently on the ring.
    public var liveServers: [Int] { ring.withLock { $0.members } }

    /// Whether server `index` has a live connection.
    public func isConnected(server index: Int) -> Bool { drivers[index].isConnected }

    /// A new stream of server `index`'s connection states; it starts with the current state.
    public func states(server index: Int) -> AsyncStream<MemcachedServerState> { drivers[index].states.makeStream() }

    /// Connection attempts made to server `index` so far.
    public func connectionAttempts(server index: Int) -> Int { drivers[index].connectionAttempts }

    /// Returns once every server is connected; throws `.timeout` otherwise.
    public func waitUntilConnected(timeout: Duration) async throws {
        // A bounded poll: the condition is several servers at once, and each may never change state.
        let connected = await Retry.until(backoff: .fixed(.milliseconds(10)), limit: .duration(timeout)) {
            !drivers.contains(where: { !$0.isConnected })
        }
        try Task.checkCancellation()
        if !connected {
            let down = drivers.filter { !$0.isConnected }.map { "\($0.server)" }
            throw MemcachedError(.timeout, "memcached servers \(down) not connected within \(timeout)")
        }
    }

    // MARK: Sending

    /// Sends a keyed command to the server that owns its key; error replies are thrown as
    /// `MemcachedError` and the connection stays usable.
    public func send(_ command: MetaCommand) async throws -> MetaResponse {
        try MetaCommand.validate(key: command.key)
        guard let index = server(for: command.key) else {
            throw MemcachedError(.noServers, "no memcached server is reachable (\(configuration.servers.count) configured)")
        }
        return try await send(command, toServer: index)
    }

    /// Sends a command to server `index`, whatever the ring says.
    public func send(_ command: MetaCommand, toServer index: Int) async throws -> MetaResponse {
        try checkServer(index)
        try check(command)
        let connection = try drivers[index].connection()
        return try await connection.send(command).checked()
    }

    /// Sends `commands` to server `index` in one round trip; the server runs them in order, and
    /// their responses come back in order. Every command answers (quiet mode is refused).
    public func sendInOrder(_ commands: [MetaCommand], toServer index: Int) async throws -> [MetaResponse] {
        try checkServer(index)
        for command in commands { try check(command) }
        let connection = try drivers[index].connection()
        let responses = try await connection.sendBatch(commands)
        guard responses.count == commands.count else {
            throw MemcachedError(.protocolError, "\(commands.count) commands answered \(responses.count) responses")
        }
        return try responses.map { try $0.checked() }
    }

    private func checkServer(_ index: Int) throws(MemcachedError) {
        guard drivers.indices.contains(index) else {
            throw MemcachedError(.client, "no server \(index); \(drivers.count) are configured")
        }
    }

    /// Refuses a command memcached would misread: a bad key or flag, an oversized value, or quiet
    /// mode, which may answer nothing, so the next caller's response would be taken for its own
    /// (quiet mode is only for batches ended by `mn`, `getMany`).
    private func check(_ command: MetaCommand) throws {
        if command.hasKey { try MetaCommand.validate(key: command.key) }
        for flag in command.flags { try MetaCommand.validate(flag: flag) }
        if command.flags.contains("q") {
            throw MemcachedError(.client, "quiet mode (q) is only for batches ended by mn; use getMany")
        }
        if command.verb == .set { try checkSize(key: command.key, valueCount: command.data.count) }
    }

    private func checkSize(key: String, valueCount: Int) throws(MemcachedError) {
        let size = key.utf8.count + valueCount + MemcachedConfiguration.itemOverhead
        guard size <= configuration.itemSizeLimit else {
            throw MemcachedError(.valueTooLarge, "a \(valueCount)-byte value exceeds the \(configuration.itemSizeLimit)-byte item size limit")
        }
    }

    // MARK: Commands

    /// The value and CAS token under `key`, nil on a miss.
    public func get(_ key: String) async throws -> MemcachedItem? {
        let response = try await send(.get(key))
        return try Self.item(response)
    }

    /// Stores `value`. With `cas`, only if the item still has that token; with `mode: .add`, only
    /// if absent. A time to live of zero keeps the item until evicted.
    public func set(_ key: String, value: [UInt8], timeToLive: Duration = .zero, cas: UInt64? = nil, mode: MetaCommand.SetMode = .set) async throws -> MemcachedStoreOutcome {
        let response = try await send(.set(key, value: value, timeToLiveSeconds: Self.expiry(timeToLive), cas: cas, mode: mode))
        return try Self.storeOutcome(response)
    }

    /// Deletes `key`, only if it still has token `cas` when given.
    public func delete(_ key: String, cas: UInt64? = nil) async throws -> MemcachedStoreOutcome {
        try Self.storeOutcome(await send(.delete(key, cas: cas)))
    }

    /// Reads many keys in one round trip per server: quiet `mg`s (misses answer nothing) ended by
    /// `mn`. Returns the hits.
    public func getMany(_ keys: [String]) async throws -> [String: MemcachedItem] {
        var byServer: [Int: [String]] = [:]
        for key in keys {
            try MetaCommand.validate(key: key)
            guard let index = server(for: key) else {
                throw MemcachedError(.noServers, "no memcached server is reachable (\(configuration.servers.count) configured)")
            }
            byServer[index, default: []].append(key)
        }
        return try await withThrowingTaskGroup(of: [String: MemcachedItem].self) { group in
            for (index, keys) in byServer {
                let connection = try drivers[index].connection()
                group.addTask {
                    let commands = keys.enumerated().map { offset, key in MetaCommand.get(key, extra: ["q", "O\(offset)"]) }
                    var found: [String: MemcachedItem] = [:]
                    for response in try await connection.sendBatch(commands) {
                        let checked = try response.checked()
                        guard let opaque = checked.opaque, let offset = Int(opaque), keys.indices.contains(offset) else {
                            throw MemcachedError(.protocolError, "quiet get answered without a known opaque token")
                        }
                        if let item = try Self.item(checked) { found[keys[offset]] = item }
                    }
                    return found
                }
            }
            var all: [String: MemcachedItem] = [:]
            for try await found in group { all.merge(found) { $1 } }
            return all
        }
    }

    /// `flush_all` on server `index`: every item there is gone.
    public func flushAll(server index: Int) async throws {
        let response = try await send(MetaCommand(.flushAll), toServer: index)
        guard response.status == .ok else { throw MemcachedError(.protocolError, "flush_all answered \(response.status)") }
    }

    /// `mn` on server `index`: a round trip that proves the server answers.
    public func noop(server index: Int) async throws {
        let response = try await send(MetaCommand(.noop), toServer: index)
        guard response.status == .noop else { throw MemcachedError(.protocolError, "mn answered \(response.status)") }
    }

    /// The version string of server `index`.
    public func version(server index: Int) async throws -> String {
        let response = try await send(MetaCommand(.version), toServer: index)
        guard case .version(let text) = response.status else { throw MemcachedError(.protocolError, "version answered \(response.status)") }
        return text
    }

    // MARK: Decoding

    static func item(_ response: MetaResponse) throws(MemcachedError) -> MemcachedItem? {
        switch response.status {
        case .miss: return nil
        case .value:
            guard let value = response.value, let cas = response.cas else {
                throw MemcachedError(.protocolError, "mg hit without a value or CAS token")
            }
            return MemcachedItem(value: value, cas: cas, flags: response.clientFlags ?? 0)
        default:
            throw MemcachedError(.protocolError, "mg answered \(response.status)")
        }
    }

    static func storeOutcome(_ response: MetaResponse) throws(MemcachedError) -> MemcachedStoreOutcome {
        switch response.status {
        case .stored: return .stored(cas: response.cas)
        case .notStored: return .notStored
        case .exists: return .exists
        case .notFound: return .notFound
        default: throw MemcachedError(.protocolError, "store answered \(response.status)")
        }
    }

    /// Memcached's TTL: seconds, rounded up; beyond 30 days it is read as a Unix time, so a long
    /// TTL is sent as one. Zero means no expiry.
    static func expiry(_ timeToLive: Duration, now: @autoclosure () -> Int = Int(ContinuousClock.unixSeconds())) -> Int {
        guard timeToLive > .zero else { return 0 }
        let (seconds, attoseconds) = timeToLive.components
        let whole = Int(clamping: seconds) + (attoseconds > 0 ? 1 : 0)
        let thirtyDays = 60 * 60 * 24 * 30
        return whole <= thirtyDays ? max(1, whole) : now() + whole
    }
}

extension ContinuousClock {
    /// Wall-clock Unix seconds (memcached's absolute expiry times are wall-clock).
    static func unixSeconds() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Int64(spec.tv_sec)
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
