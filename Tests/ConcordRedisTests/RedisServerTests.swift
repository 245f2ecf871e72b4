import ConcordProcess
import ConcordTesting
import Foundation
import Testing

@testable import ConcordRedis

@Suite("RedisServer launcher", .timeLimit(.minutes(2)))
struct RedisServerTests {
    @Test func parallelStartsGetTheirOwnPortsAndProcesses() async throws {
        let servers = try await withThrowingTaskGroup(of: RedisServer.self) { group in
            for _ in 0..<6 {
                group.addTask { try await RedisServer.start() }
            }
            var servers: [RedisServer] = []
            for try await server in group { servers.append(server) }
            return servers
        }
        defer { servers.forEach { $0.stop() } }
        #expect(Set(servers.map(\.port)).count == servers.count)
        #expect(Set(servers.compactMap(\.processIdentifier)).count == servers.count)
        for server in servers {
            #expect(RedisServer.probe(port: server.port, password: nil) == server.processIdentifier)
        }
    }

    @Test func restartKeepsThePortAndEmptiesTheData() async throws {
        try await withRedisServer(.init(requirePassword: "pw")) { server in
            let port = server.port
            let firstPID = try #require(server.processIdentifier)
            #expect(RedisServer.probe(port: port, password: "pw") == firstPID)
            server.kill()
            #expect(server.processIdentifier == nil)
            #expect(RedisServer.probe(port: port, password: "pw") == nil)
            try await server.restart()
            #expect(server.port == port)
            let secondPID = try #require(server.processIdentifier)
            #expect(secondPID != firstPID)
            #expect(RedisServer.probe(port: port, password: "pw") == secondPID)
        }
    }

    @Test func stopKillsTheProcessAndRemovesTheDirectory() async throws {
        let server = try await RedisServer.start()
        let pid = try #require(server.processIdentifier)
        #expect(FileManager.default.fileExists(atPath: server.directory.path))
        server.stop()
        server.stop()  // idempotent
        #expect(!FileManager.default.fileExists(atPath: server.directory.path))
        #expect(kill(pid, 0) != 0)  // no such process any more
        #expect(server.url == "redis://127.0.0.1:\(server.port)")
    }
}
