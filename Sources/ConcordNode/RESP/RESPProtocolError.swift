/// A client sent bytes that are not a RESP command the node can parse: the node answers
/// `-ERR Protocol error: ...` and closes the connection, as Redis does.
struct RESPProtocolError: Error, CustomStringConvertible {
    let message: String

    init(_ message: String) {
        self.message = message
    }

    var description: String { "Protocol error: \(message)" }
}
