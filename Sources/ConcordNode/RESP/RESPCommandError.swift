/// A command the front end refuses, with the reply's error text: its first word is the RESP
/// error code (`ERR`, `NOAUTH`, `WRONGPASS`, `NOPROTO`), as Redis clients expect.
struct RESPCommandError: Error {
    let reply: String

    init(_ reply: String) {
        self.reply = reply
    }

    static func arity(_ name: String) -> RESPCommandError {
        RESPCommandError("ERR wrong number of arguments for '\(name.lowercased())' command")
    }

    static var syntax: RESPCommandError { RESPCommandError("ERR syntax error") }

    static var notInteger: RESPCommandError { RESPCommandError("ERR value is not an integer or out of range") }
}
