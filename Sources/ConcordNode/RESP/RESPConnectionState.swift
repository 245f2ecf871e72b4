/// What the front end knows about one client connection.
struct RESPConnectionState: Sendable {
    let id: Int
    /// What the password this connection authenticated with grants; empty before AUTH.
    var scopes: APIScope = []
    var name: [UInt8]?

    init(id: Int) {
        self.id = id
    }
}
