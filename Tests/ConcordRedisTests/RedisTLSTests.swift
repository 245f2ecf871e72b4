import ConcordProcess
import ConcordTesting
import Foundation
import Testing

@testable import ConcordRedis

/// The TLS matrix against the Debian redis-server on a `tls-port`, with a CA and certificates
/// made by openssl for each suite run.
@Suite("TLS: rediss:// against a real redis-server", .timeLimit(.minutes(2)))
struct RedisTLSTests {
    let certificates: TestCertificates

    init() async throws {
        certificates = try await TestCertificates.generate()
    }

    private func fast(_ configuration: RedisConfiguration) -> RedisConfiguration {
        var configuration = configuration
        configuration.reconnect = .init(backoffBase: .milliseconds(50), backoffCap: .milliseconds(200))
        configuration.connectTimeout = .seconds(5)
        configuration.commandTimeout = .seconds(5)
        return configuration
    }

    @Test func trustedServerCarriesCommandsAndPubSub() async throws {
        defer { certificates.remove() }
        try await withRedisServer(.init(tls: .init(certificates))) { server in
            let configuration = fast(server.tlsConfiguration(certificates.clientTLS))
            try await withRunningSubscriber(configuration) { subscriber in
                let messages = subscriber.messages
                try await subscriber.subscribe(channels: ["tls-channel"])
                try await withRunningClient(configuration) { client async throws in
                    #expect(try await client.send("SET", "k", "over tls") == .simpleString("OK"))
                    #expect(try await client.send("GET", "k") == .bulkString(Array("over tls".utf8)))
                    #expect(try await client.send("PUBLISH", "tls-channel", "hello") == .integer(1))
                }
                let received = try await firstMessage(in: messages)
                #expect(received?.channel == "tls-channel")
                #expect(received?.payloadString == "hello")
            }
        }
    }

    @Test func untrustedCertificateAuthorityIsATypedErrorRetriedWithBackoff() async throws {
        defer { certificates.remove() }
        try await withRedisServer(.init(tls: .init(certificates))) { server in
            let configuration = fast(server.tlsConfiguration(.init(caFile: certificates.untrustedCAFile)))
            try await withRunningClient(configuration, waitForConnection: false) { client in
                let failed = try await firstState(in: client.states) {
                    if case .disconnected(let error) = $0 { return error.code == .tlsUntrustedCertificate }
                    return false
                }
                #expect(failed != nil)
                #expect(await redisError { _ = try await client.send("PING") }?.code == .tlsUntrustedCertificate)
                let waited = await redisError { try await client.waitUntilConnected(timeout: .milliseconds(100)) }
                #expect(waited?.code == .tlsUntrustedCertificate)

                // Measuring a rate needs real time to pass.
                let before = client.driver.connectionAttempts
                try await Task.sleep(for: .seconds(1))
                let attempts = client.driver.connectionAttempts - before
                // Full jitter under a 200 ms cap averages ~10 attempts a second; a retry storm would be thousands.
                #expect(attempts >= 1)
                #expect(attempts <= 60)
            }
        }
    }

    @Test func insecureSkipVerifyAcceptsAnUntrustedServer() async throws {
        defer { certificates.remove() }
        try await withRedisServer(.init(tls: .init(certificates))) { server in
            let configuration = fast(server.tlsConfiguration(.init(caFile: certificates.untrustedCAFile, insecureSkipVerify: true)))
            try await withRunningClient(configuration) { client async throws in
                #expect(try await client.send("PING") == .simpleString("PONG"))
            }
        }
    }

    @Test func certificateForAnotherNameIsAHostnameMismatchUnlessTheServerNameIsGiven() async throws {
        defer { certificates.remove() }
        let named = RedisServer.Options.TLS(
            certificateFile: certificates.namedServerCertificateFile, keyFile: certificates.namedServerKeyFile, caFile: certificates.caFile)
        try await withRedisServer(.init(tls: named)) { server in
            // Reached as 127.0.0.1, a certificate for cache.internal only does not match.
            var tls = certificates.clientTLS
            try await withRunningClient(fast(server.tlsConfiguration(tls)), waitForConnection: false) { client in
                let failed = try await firstState(in: client.states) {
                    if case .disconnected(let error) = $0 { return error.code == .tlsHostnameMismatch }
                    return false
                }
                #expect(failed != nil)
            }
            // The wrong name does not match either.
            tls.serverName = "other.internal"
            try await withRunningClient(fast(server.tlsConfiguration(tls)), waitForConnection: false) { client in
                let failed = try await firstState(in: client.states) {
                    if case .disconnected(let error) = $0 { return error.code == .tlsHostnameMismatch }
                    return false
                }
                #expect(failed != nil)
            }
            // The name the certificate carries, given as the server name, passes.
            tls.serverName = TestCertificates.namedServerName
            try await withRunningClient(fast(server.tlsConfiguration(tls))) { client async throws in
                #expect(try await client.send("PING") == .simpleString("PONG"))
            }
        }
    }

    @Test func mutualTLSAcceptsTheClientCertificateAndRefusesItsAbsence() async throws {
        defer { certificates.remove() }
        try await withRedisServer(.init(tls: .init(certificates, requireClientCertificates: true))) { server in
            try await withRunningClient(fast(server.tlsConfiguration(certificates.mutualClientTLS))) { client async throws in
                #expect(try await client.send("PING") == .simpleString("PONG"))
            }
            try await withRunningClient(fast(server.tlsConfiguration(certificates.clientTLS)), waitForConnection: false) { client in
                let failed = try await firstState(in: client.states) {
                    if case .disconnected(let error) = $0 { return error.code == .tlsClientCertificateRejected }
                    return false
                }
                #expect(failed != nil)
                #expect(!client.isConnected)
            }
        }
    }

    @Test func clientAndSubscriberReconnectOverTLSAfterARestart() async throws {
        defer { certificates.remove() }
        try await withRedisServer(.init(tls: .init(certificates))) { server in
            let configuration = fast(server.tlsConfiguration(certificates.clientTLS))
            try await withRunningSubscriber(configuration) { subscriber in
                let messages = subscriber.messages
                try await subscriber.subscribe(channels: ["after-restart"])
                try await withRunningClient(configuration) { client in
                    #expect(try await client.send("SET", "before", "1") == .simpleString("OK"))
                    let subscriberStates = subscriber.states
                    try await server.restart()
                    // The subscriber is back once it published .connected after a disconnect.
                    let lost = try await firstState(in: subscriberStates) { !$0.isConnected }
                    #expect(lost != nil)
                    #expect(await eventually { subscriber.isConnected })
                    #expect(await eventually { (try? await client.send("PING")) == .simpleString("PONG") })
                    #expect(try await client.send("GET", "before") == .null)  // a new, empty server
                    // Publish until the re-subscribed connection hears it (it may re-subscribe a moment later).
                    #expect(
                        await eventually {
                            ((try? await client.send("PUBLISH", "after-restart", "again")) ?? .integer(0)) == .integer(1)
                        })
                }
                let received = try await firstMessage(in: messages)
                #expect(received?.payloadString == "again")
            }
        }
    }

    @Test func aServerThatNeverAnswersTheHandshakeTimesOut() async throws {
        let silent = try await SilentServer.start()
        var configuration = RedisConfiguration(host: "127.0.0.1", port: silent.port, tls: .init(insecureSkipVerify: true))
        configuration.connectTimeout = .milliseconds(200)
        configuration.reconnect = .init(backoffBase: .milliseconds(50), backoffCap: .milliseconds(200))
        do {
            try await withRunningClient(configuration, waitForConnection: false) { client in
                let failed = try await firstState(in: client.states) {
                    if case .disconnected(let error) = $0 { return error.code == .tlsHandshakeTimeout }
                    return false
                }
                #expect(failed != nil)
            }
        } catch {
            await silent.stop()
            throw error
        }
        await silent.stop()
    }

    @Test func aPlaintextServerOnARedissURLIsATypedHandshakeFailure() async throws {
        try await withRedisServer { server in
            // Redis reads the ClientHello as the start of an inline command and waits for its
            // end, so the handshake never finishes: a timeout, typed as a TLS one.
            var configuration = fast(RedisConfiguration(host: server.host, port: server.port, tls: .init(insecureSkipVerify: true)))
            configuration.connectTimeout = .milliseconds(300)
            try await withRunningClient(configuration, waitForConnection: false) { client in
                let failed = try await firstState(in: client.states) {
                    if case .disconnected(let error) = $0 { return error.code == .tlsHandshakeTimeout || error.code == .tlsHandshakeFailed }
                    return false
                }
                #expect(failed != nil)
            }
        }
    }

    @Test func unreadableFilesAreConfigurationErrors() async throws {
        defer { certificates.remove() }
        let cases: [RedisConfiguration.TLS] = [
            .init(caFile: "/nonexistent/ca.pem"),
            .init(caFile: certificates.caFile, certificateFile: certificates.clientCertificateFile),
            .init(caFile: certificates.caFile, privateKeyFile: certificates.clientKeyFile),
            .init(caFile: certificates.caFile, certificateFile: certificates.clientKeyFile, privateKeyFile: certificates.clientKeyFile),
        ]
        for tls in cases {
            let error = await redisError {
                _ = try await RedisConnection.connect(
                    configuration: RedisConfiguration(port: 1, tls: tls), eventLoop: MultiThreadedEventLoopGroupForTests.loop,
                    logger: testLogger)
            }
            #expect(error?.code == .tlsConfiguration, "\(tls)")
        }
    }
}

/// The first message on `messages` within `timeout`.
func firstMessage(
    in messages: AsyncStream<RedisPubSubMessage>,
    timeout: Duration = .seconds(10)
) async throws -> RedisPubSubMessage? {
    try await withThrowingTaskGroup(of: RedisPubSubMessage?.self) { group in
        group.addTask {
            for await message in messages { return message }
            return nil
        }
        group.addTask {
            try await Task.sleep(for: timeout)
            return nil
        }
        let first = try await group.next() ?? nil
        group.cancelAll()
        return first
    }
}
