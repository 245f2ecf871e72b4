/// One response of the meta protocol: its status, its return flags and, for `VA`, the value.
public struct MetaResponse: Sendable, Equatable {
    /// The response code.
    public enum Status: Sendable, Equatable {
        /// `VA`: a hit, with the value.
        case value
        /// `HD`: success without a value (stored, deleted, hit without `v`).
        case stored
        /// `EN`: a miss.
        case miss
        /// `NF`: the key to delete or replace does not exist.
        case notFound
        /// `NS`: not stored (an add found the key, a replace did not).
        case notStored
        /// `EX`: the CAS token did not match: someone else wrote first.
        case exists
        /// `MN`: the end of a pipeline of quiet commands.
        case noop
        /// `OK` (`flush_all`).
        case ok
        /// `VERSION x`.
        case version(String)
        /// `ERROR`: the server did not know the command.
        case error
        /// `CLIENT_ERROR message`.
        case clientError(String)
        /// `SERVER_ERROR message`.
        case serverError(String)
    }

    public var status: Status
    /// Return flags, each a letter and its token (`c` → `12345`, `t` → `-1`, `O` → `7`).
    public var flags: [(letter: UInt8, token: Substring)]
    public var value: [UInt8]?

    public init(status: Status, flags: [(letter: UInt8, token: Substring)] = [], value: [UInt8]? = nil) {
        self.status = status
        self.flags = flags
        self.value = value
    }

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.status == rhs.status && lhs.value == rhs.value
            && lhs.flags.map { "\($0.letter)\($0.token)" } == rhs.flags.map { "\($0.letter)\($0.token)" }
    }

    /// The token of return flag `letter`, if present.
    public func flag(_ letter: Character) -> Substring? {
        guard let ascii = letter.asciiValue else { return nil }
        return flags.first(where: { $0.letter == ascii })?.token
    }

    /// The CAS token (`c` flag).
    public var cas: UInt64? { flag("c").flatMap { UInt64($0) } }
    /// The opaque token (`O` flag).
    public var opaque: Substring? { flag("O") }
    /// The client flags (`f` flag).
    public var clientFlags: UInt32? { flag("f").flatMap { UInt32($0) } }

    /// The response as a thrown error when it is one of the error replies.
    func checked() throws(MemcachedError) -> MetaResponse {
        switch status {
        case .error: throw MemcachedError(.client, "memcached answered ERROR (unknown command)")
        case .clientError(let message): throw MemcachedError(.client, message)
        case .serverError(let message):
            if message.contains("too large") { throw MemcachedError(.valueTooLarge, message) }
            throw MemcachedError(.server, message)
        default: return self
        }
    }
}
