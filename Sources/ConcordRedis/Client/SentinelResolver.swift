import Logging
import NIOCore
import Synchronization

/// The Sentinel client protocol: finds the master's address, checks that what it reached is a
/// master, and watches for the master to move while connected.
///
/// Sentinels are asked in turn; the first that answers moves to the front, so the next lookup
/// asks a Sentinel known to work first. The master is looked up again before every connect,
/// and while connected the watch ends the connection as soon as `+switch-master` names a new
/// address, or a poll of the Sentinels does (pub/sub may miss the event, so it is never relied
/// on alone).
final class SentinelResolver: Sendable {
    /// A master's address as the Sentinels give it.
    struct Address: Hashable, Sendable, CustomStringConvertible {
        var host: String
        var port: Int
        var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
    }

    let sentinel: RedisConfiguration.Sentinel
    private let base: RedisConfiguration
    private let order: Mutex<[RedisConfiguration.Sentinel.Endpoint]>
    private let logger: Logger

    init(configuration: RedisConfiguration, sentinel: RedisConfiguration.Sentinel, logger: Logger) {
        self.base = configuration
        self.sentinel = sentinel
        self.order = Mutex(sentinel.endpoints)
        self.logger = logger
    }

    /// The Sentinels in the order they will be asked.
    var endpoints: [RedisConfiguration.Sentinel.Endpoint] { order.withLock { $0 } }

    /// The configuration for talking to one Sentinel: its address and credentials, the client's
    /// TLS settings and timeouts, database 0.
    func configuration(for endpoint: RedisConfiguration.Sentinel.Endpoint) -> RedisConfiguration {
        RedisConfiguration(
            host: endpoint.host, port: endpoint.port, username: sentinel.username, password: sentinel.password,
            connectTimeout: base.connectTimeout, commandTimeout: base.commandTimeout, tls: base.tls)
    }

    /// The configuration for the master at `address`: the client's own, pointed at it.
    func configuration(forMaster address: Address) -> RedisConfiguration {
        var configuration = base
        configuration.host = address.host
        configuration.port = address.port
        configuration.sentinel = nil
        return configuration
    }

    // MARK: Resolving

    /// Asks the Sentinels in turn for the master's address.
    ///
    /// Throws `.sentinelMasterUnknown` when Sentinels answered but none knows the master,
    /// `.sentinelUnreachable` when none answered (or a configuration error, such as a refused
    /// certificate or password, when every Sentinel failed the same way).
    func resolveMaster(eventLoop: any EventLoop) async throws(RedisError) -> Address {
        var failures: [RedisError] = []
        var unknownBy: [String] = []
        for endpoint in endpoints {
            let connection: RedisConnection
            do {
                connection = try await RedisConnection.connect(configuration: configuration(for: endpoint), eventLoop: eventLoop, logger: logger)
            } catch {
                failures.append(error)
                continue
            }
            defer { connection.close(RedisError(.connectionClosed, "Sentinel lookup done")) }
            do {
                if let address = try await askMaster(on: connection) {
                    promote(endpoint)
                    return address
                }
                unknownBy.append(endpoint.description)
            } catch {
                failures.append(error)
            }
        }
        if !unknownBy.isEmpty {
            throw RedisError(
                .sentinelMasterUnknown, "no Sentinel knows a master named '\(sentinel.masterName)' (asked \(unknownBy.joined(separator: ", ")))")
        }
        if let first = failures.first, first.isConfigurationProblem, failures.allSatisfy({ $0.code == first.code }) {
            throw RedisError(first.code, "every Sentinel failed: \(first.message)", underlying: first)
        }
        let tried = sentinel.endpoints.map(\.description).joined(separator: ", ")
        throw RedisError(.sentinelUnreachable, "no Sentinel reachable (tried \(tried))", underlying: failures.last)
    }

    /// `SENTINEL get-master-addr-by-name`; nil when this Sentinel does not know the master.
    func askMaster(on connection: RedisConnection) async throws(RedisError) -> Address? {
        let reply: RESPValue
        do {
            reply = try await connection.send(["SENTINEL", "get-master-addr-by-name", .init(sentinel.masterName)])
        } catch let error as RedisError {
            throw error
        } catch {
            throw RedisError(.connectionClosed, "Sentinel lookup failed", underlying: error)
        }
        switch reply {
        case .null:
            return nil
        case .array(let items) where items.count == 2:
            guard let host = items[0].string, !host.isEmpty, let portText = items[1].string, let port = Int(portText),
                (1...65_535).contains(port)
            else {
                throw RedisError(.protocolError, "Sentinel answered get-master-addr-by-name with a malformed address: \(reply)")
            }
            return Address(host: host, port: port)
        case .error(let message):
            if message.hasPrefix("NOAUTH") || message.hasPrefix("WRONGPASS") {
                throw RedisError(.authenticationFailed, "Sentinel: \(message)")
            }
            throw RedisError(.server, "Sentinel: \(message)")
        default:
            throw RedisError(.protocolError, "Sentinel answered get-master-addr-by-name with \(reply)")
        }
    }

    private func promote(_ endpoint: RedisConfiguration.Sentinel.Endpoint) {
        order.withLock { order in
            guard let index = order.firstIndex(of: endpoint), index != 0 else { return }
            order.remove(at: index)
            order.insert(endpoint, at: 0)
        }
    }

    // MARK: Verifying

    /// `ROLE` must say master: a Sentinel's answer can be stale during a failover, and a
    /// restarted old master may briefly run before it is turned into a replica.
    static func verifyMaster(_ connection: RedisConnection, address: Address) async throws(RedisError) {
        let reply: RESPValue
        do {
            reply = try await connection.send(["ROLE"])
        } catch let error as RedisError {
            throw error
        } catch {
            throw RedisError(.connectionClosed, "ROLE failed", underlying: error)
        }
        guard case .array(let items) = reply, let role = items.first?.string else {
            throw RedisError(.protocolError, "unexpected reply to ROLE from \(address): \(reply)")
        }
        guard role == "master" else {
            throw RedisError(.notMaster, "the Sentinels named \(address) as master, but its ROLE is \(role)")
        }
    }

    // MARK: Watching

    /// Returns once the master is no longer at `address`, having closed `connection` with a
    /// `.notMaster` error that says where it went; runs until cancelled otherwise.
    func watch(_ connection: RedisConnection, address: Address, eventLoop: any EventLoop) async {
        let moved: Address? = await withTaskGroup(of: Address?.self) { group in
            group.addTask { await self.pollUntilMoved(from: address, eventLoop: eventLoop) }
            group.addTask { await self.listenUntilMoved(from: address, eventLoop: eventLoop) }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
        guard let moved else { return }
        logger.info(
            "master moved; reconnecting through Sentinel",
            metadata: ["concord.redis.master": "\(sentinel.masterName)", "concord.redis.from": "\(address)", "concord.redis.to": "\(moved)"])
        connection.close(RedisError(.notMaster, "master '\(sentinel.masterName)' moved from \(address) to \(moved)"))
    }

    /// Asks the Sentinels every `pollInterval` on one kept connection. A Sentinel outage does not
    /// end a working master connection: the poll just tries the next Sentinel next time.
    private func pollUntilMoved(from address: Address, eventLoop: any EventLoop) async -> Address? {
        var connection: RedisConnection?
        defer { connection?.close(RedisError(.connectionClosed, "Sentinel poll done")) }
        while !Task.isCancelled {
            do {
                try await Task.sleep(for: sentinel.pollInterval)
            } catch {
                return nil
            }
            do {
                if connection == nil || connection?.closeError != nil {
                    connection = try await connectToAnySentinel(eventLoop: eventLoop)
                }
                if let current = try await askMaster(on: connection!), current != address {
                    return current
                }
            } catch {
                connection?.close(RedisError(.connectionClosed, "Sentinel poll failed", underlying: error))
                connection = nil
                logger.debug("Sentinel poll failed", metadata: ["concord.redis.error": "\(error)"])
            }
        }
        return nil
    }

    /// Subscribes to `+switch-master` on a Sentinel and returns the new address when the event names this master.
    private func listenUntilMoved(from address: Address, eventLoop: any EventLoop) async -> Address? {
        while !Task.isCancelled {
            let (events, continuation) = AsyncStream<RedisPubSubMessage>.makeStream(bufferingPolicy: .bufferingNewest(64))
            let masterName = sentinel.masterName
            do {
                let connection = try await connectToAnySentinel(eventLoop: eventLoop) { message in
                    if message.channel == "+switch-master" { continuation.yield(message) }
                }
                connection.closeFuture.whenComplete { _ in continuation.finish() }
                _ = try await connection.send(["SUBSCRIBE", "+switch-master"], replies: 1)
                let moved: Address? = await withTaskCancellationHandler {
                    for await event in events {
                        // "<master-name> <old-ip> <old-port> <new-ip> <new-port>"
                        let fields = event.payloadString.split(separator: " ")
                        guard fields.count == 5, fields[0] == masterName, let port = Int(fields[4]) else { continue }
                        let next = Address(host: String(fields[3]), port: port)
                        if next != address { return next }
                    }
                    return nil
                } onCancel: {
                    connection.close(RedisError(.connectionClosed, "Sentinel watch done"))
                }
                connection.close(RedisError(.connectionClosed, "Sentinel watch done"))
                if let moved { return moved }
            } catch {
                logger.debug("Sentinel subscription failed", metadata: ["concord.redis.error": "\(error)"])
            }
            continuation.finish()
            do {
                try await Task.sleep(for: sentinel.pollInterval)
            } catch {
                return nil
            }
        }
        return nil
    }

    private func connectToAnySentinel(
        eventLoop: any EventLoop,
        onMessage: (@Sendable (RedisPubSubMessage) -> Void)? = nil
    ) async throws(RedisError) -> RedisConnection {
        var lastError: RedisError?
        for endpoint in endpoints {
            do {
                return try await RedisConnection.connect(
                    configuration: configuration(for: endpoint), eventLoop: eventLoop, logger: logger, onMessage: onMessage)
            } catch {
                lastError = error
            }
        }
        throw RedisError(.sentinelUnreachable, "no Sentinel reachable", underlying: lastError)
    }
}
