/// What a connection hook sees of a newly connected server before it serves requests.
package struct MemcachedServerPreparation: Sendable {
    /// The server's index in `MemcachedConfiguration.servers`.
    package let index: Int
    package let server: MemcachedConfiguration.Server
    /// Whether the server had failed (and left the ring) since it last served.
    package let rejoining: Bool
    private let connection: MemcachedConnection

    init(index: Int, server: MemcachedConfiguration.Server, rejoining: Bool, connection: MemcachedConnection) {
        self.index = index
        self.server = server
        self.rejoining = rejoining
        self.connection = connection
    }

    /// Sends a command on the new connection.
    package func send(_ command: MetaCommand) async throws -> MetaResponse {
        try await connection.send(command).checked()
    }
}
