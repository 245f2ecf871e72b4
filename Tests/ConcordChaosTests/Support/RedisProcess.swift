import ConcordProcess
import NIOCore
import NIOPosix
import ConcordTesting

/// Runs `body` with the port of a throwaway redis-server (`ConcordProcess.RedisServer`, the one
/// launcher), which is killed on every path out, including a thrown error.
func withRedisPort<T>(_ body: (Int) async throws -> T) async throws -> T {
    try await withRedisServer { server in try await body(server.port) }
}

/// Sends PING over a fresh connection and reports whether +PONG came back.
func redisPing(port: Int, timeout: Duration = TestBounds.condition) async throws -> Bool {
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
