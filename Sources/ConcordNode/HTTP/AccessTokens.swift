/// The bearer tokens a node accepts, each with the scopes it grants. Several tokens per scope
/// let an operator rotate: add the new one, move the clients, remove the old one.
///
/// A presented token is compared with every known token in time that depends only on the
/// known tokens' lengths, never on where the first differing byte is, and without stopping at
/// the first match: response times do not reveal how much of a guess was right.
public struct AccessTokens: Sendable {
    private var entries: [(token: [UInt8], scopes: APIScope)] = []
    /// The scopes that need a token at all; the others are open to everyone.
    public private(set) var protectedScopes: APIScope = []

    public init() {}

    /// Grants `scopes` to each of `tokens`, and marks those scopes as needing a token.
    public mutating func add(_ tokens: [String], scopes: APIScope, protecting protected: APIScope) {
        for token in tokens { entries.append((Array(token.utf8), scopes)) }
        protectedScopes.formUnion(protected)
    }

    /// The tokens of a node configuration's token files: read tokens read; admin tokens read
    /// and write, and read the metrics; metrics tokens read only the metrics. With an auth or
    /// admin file, reading and writing need a token; with a metrics file, the metrics do.
    public init(configuration: NodeConfiguration) throws(NodeConfigurationError) {
        if let path = configuration.authTokenFile {
            add(try SecretFile.lines(of: path, option: .authTokenFile), scopes: .read, protecting: [.read, .admin])
        }
        if let path = configuration.adminTokenFile {
            add(try SecretFile.lines(of: path, option: .adminTokenFile), scopes: [.read, .admin, .metrics], protecting: [.read, .admin])
        }
        if let path = configuration.metricsTokenFile {
            add(try SecretFile.lines(of: path, option: .metricsTokenFile), scopes: .metrics, protecting: .metrics)
        }
    }

    /// Whether a request for `scope` needs a token.
    public func isProtected(_ scope: APIScope) -> Bool { !protectedScopes.isDisjoint(with: scope) }

    /// The scopes `token` grants; empty for an unknown token.
    public func scopes(of token: String) -> APIScope {
        scopes(of: Array(token.utf8))
    }

    /// The scopes the token with these bytes grants (a RESP AUTH password); empty for an
    /// unknown one. Bytes are compared as they are, so no decoding can make two tokens equal.
    public func scopes(of presented: [UInt8]) -> APIScope {
        var granted: APIScope = []
        for entry in entries where Self.constantTimeEquals(presented, entry.token) {
            granted.formUnion(entry.scopes)
        }
        return granted
    }

    /// Compares every byte of `known` whatever the bytes are; the lengths differing makes it
    /// false without an early return.
    @inline(never)
    static func constantTimeEquals(_ presented: [UInt8], _ known: [UInt8]) -> Bool {
        var difference: UInt8 = presented.count == known.count ? 0 : 1
        for index in known.indices {
            let byte = index < presented.count ? presented[index] : 0
            difference |= byte ^ known[index]
        }
        return difference == 0
    }
}
