import Foundation
import NIOCore
import NIOPosix
import ConcordTesting

#if canImport(Glibc)
import Glibc
#endif

/// Runs `body` with a throwaway redis-server on a free 127.0.0.1 port, and kills the server on
/// every path out, including a thrown error.
func withRedisServer<T>(_ body: (Int) async throws -> T) async throws -> T {
    var lastError: (any Error)?
    for _ in 0..<3 {
        let port = try RedisServer.freePort()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try redisServerPath())
        process.arguments = ["--port", "\(port)", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer { stop(process) }
        let ready = await eventually(timeout: .seconds(5)) {
            guard process.isRunning else { return false }
            return (try? await redisPing(port: port)) == true
        }
        guard ready else {
            lastError = RedisLaunchError(message: "redis-server on port \(port) did not answer PING")
            continue
        }
        return try await body(port)
    }
    throw lastError ?? RedisLaunchError(message: "redis-server did not start")
}

struct RedisLaunchError: Error {
    var message: String
}

private func redisServerPath() throws -> String {
    for path in ["/usr/bin/redis-server", "/usr/local/bin/redis-server"] where FileManager.default.isExecutableFile(atPath: path) {
        return path
    }
    throw RedisLaunchError(message: "redis-server not installed (scripts/setup.sh installs it)")
}

private func stop(_ process: Process) {
    guard process.isRunning else { return }
    // SIGKILL, not SIGTERM: the child may inherit a signal mask from the test runner that blocks
    // SIGTERM, and a server with no persistence has nothing to flush anyway.
    kill(process.processIdentifier, SIGKILL)
    let deadline = Date().addingTimeInterval(5)
    while process.isRunning, Date() < deadline { usleep(5_000) }
}


/// Sends PING over a fresh connection and reports whether +PONG came back.
func redisPing(port: Int, timeout: Duration = .seconds(2)) async throws -> Bool {
    let client = try await TestTCPClient.connect(port: port)
    do {
        try await client.send("*1\r\n$4\r\nPING\r\n")
    } catch {
        await client.close()
        throw error
    }
    let answered = await eventually(timeout: timeout) { client.receivedString == "+PONG\r\n" }
    await client.close()
    return answered
}
