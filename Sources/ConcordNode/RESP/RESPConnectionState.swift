/// What the front end knows about one client connection.
struct RESPConnectionState: Sendable {
    let id: Int
    var isAuthenticated: Bool
    var name: [UInt8]?

    init(id: Int, isAuthenticated: Bool) {
        self.id = id
        self.isAuthenticated = isAuthenticated
    }
}
