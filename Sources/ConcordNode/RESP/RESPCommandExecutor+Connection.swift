import Concord
import NIOCore

/// The connection commands: AUTH, HELLO and CLIENT, and the scope checks every command makes.
extension RESPCommandExecutor {
    // MARK: Connection

    /// A command that reads needs `.read`, one that writes `.admin`, as over HTTP; when the
    /// scope is not protected, anyone may.
    func require(_ scope: APIScope, for name: String, state: RESPConnectionState) throws {
        guard protectedScopes.isDisjoint(with: scope) || state.scopes.isSuperset(of: scope) else {
            throw RESPCommandError("NOPERM this token has no permissions to run the '\(name.lowercased())' command")
        }
    }

    func auth(_ arguments: [[UInt8]], state: inout RESPConnectionState, into writer: inout RESPReplyWriter) throws {
        guard arguments.count == 2 || arguments.count == 3 else { throw RESPCommandError.arity("auth") }
        guard requiresAuthentication else {
            throw RESPCommandError("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?")
        }
        try authenticate(password: arguments[arguments.count - 1], state: &state)
        writer.simple("OK")
    }

    /// Accepts the RESP password or any node token that reads or writes the cache; the
    /// connection then has that token's scopes. Both are compared in full, whichever matches.
    func authenticate(password: [UInt8], state: inout RESPConnectionState) throws {
        let matchesPassword = token.map { Self.constantTimeEqual(password, $0) } ?? false
        var granted = accessTokens.scopes(of: password).intersection([.read, .admin])
        if matchesPassword { granted.formUnion([.read, .admin]) }
        guard !granted.isEmpty else {
            throw RESPCommandError("WRONGPASS invalid username-password pair or user is disabled.")
        }
        state.scopes = granted
    }

    /// `HELLO [2 [AUTH user password] [SETNAME name]]`: RESP2 only, as the node speaks no RESP3.
    func hello(_ arguments: [[UInt8]], state: inout RESPConnectionState, into writer: inout RESPReplyWriter) throws {
        if arguments.count >= 2 {
            guard let version = Int(String(decoding: arguments[1], as: UTF8.self)) else {
                throw RESPCommandError("ERR Protocol version is not an integer or out of range")
            }
            guard version == 2 else { throw RESPCommandError("NOPROTO unsupported protocol version") }
        }
        var index = 2
        var name: [UInt8]?
        while index < arguments.count {
            switch Self.commandName(arguments[index]) {
            case "AUTH" where index + 2 < arguments.count:
                if requiresAuthentication { try authenticate(password: arguments[index + 2], state: &state) }
                index += 3
            case "SETNAME" where index + 1 < arguments.count:
                name = arguments[index + 1]
                index += 2
            default:
                throw RESPCommandError("ERR Syntax error in HELLO option '\(Self.clipped(String(decoding: arguments[index], as: UTF8.self)))'")
            }
        }
        if requiresAuthentication, state.scopes.isEmpty {
            throw RESPCommandError("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time")
        }
        if let name { state.name = name }
        writer.arrayHeader(14)
        writer.bulk("server")
        writer.bulk("concord")
        // The Redis version whose commands the front end follows; clients gate features on it.
        writer.bulk("version")
        writer.bulk("7.0.0")
        writer.bulk("proto")
        writer.integer(2)
        writer.bulk("id")
        writer.integer(state.id)
        writer.bulk("mode")
        writer.bulk("standalone")
        writer.bulk("role")
        writer.bulk("master")
        writer.bulk("modules")
        writer.arrayHeader(0)
    }

    func client(_ arguments: [[UInt8]], state: inout RESPConnectionState, into writer: inout RESPReplyWriter) throws {
        guard arguments.count >= 2 else { throw RESPCommandError.arity("client") }
        let subcommand = Self.commandName(arguments[1])
        switch subcommand {
        case "SETNAME" where arguments.count == 3:
            state.name = arguments[2].isEmpty ? nil : arguments[2]
            writer.simple("OK")
        case "SETINFO" where arguments.count == 4:
            writer.simple("OK")
        case "GETNAME" where arguments.count == 2:
            writer.bulk(state.name)
        case "ID" where arguments.count == 2:
            writer.integer(state.id)
        case "SETNAME", "SETINFO", "GETNAME", "ID":
            throw RESPCommandError.arity("client|\(subcommand.lowercased())")
        default:
            throw RESPCommandError("ERR unknown subcommand '\(Self.clipped(String(decoding: arguments[1], as: UTF8.self)))' for 'client': the node answers CLIENT SETNAME, SETINFO, GETNAME and ID")
        }
    }
}
