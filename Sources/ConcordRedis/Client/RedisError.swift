/// The one error type of the Redis client: a code to switch on, a message for people, and where it came from.
public struct RedisError: Error, CustomStringConvertible, Sendable {
    /// What went wrong, as an extensible set of codes (new codes do not break callers' switches).
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        fileprivate enum Base: Hashable, Sendable {
            case connectionRefused
            case connectionClosed
            case timeout
            case authenticationFailed
            case server
            case protocolError
            case notConnected
            case invalidURL
            case unsupportedCommand
            case tlsConfiguration
            case tlsUntrustedCertificate
            case tlsHostnameMismatch
            case tlsHandshakeTimeout
            case tlsClientCertificateRejected
            case tlsHandshakeFailed
            case sentinelUnreachable
            case sentinelMasterUnknown
            case notMaster
            case invalidArgument
            case clusterTopologyInvalid
            case clusterTopologyInconsistent
            case clusterUnreachable
            case clusterRedirectLimit
            case crossSlot
            case shardSubscriptionMoved
        }

        fileprivate let base: Base

        private init(_ base: Base) { self.base = base }

        /// The TCP connection could not be established.
        public static var connectionRefused: Self { .init(.connectionRefused) }
        /// The connection closed while a command was in flight, or was closed by the client.
        public static var connectionClosed: Self { .init(.connectionClosed) }
        /// A connect or command deadline passed.
        public static var timeout: Self { .init(.timeout) }
        /// Redis rejected AUTH (wrong password, unknown ACL user) or demands authentication.
        public static var authenticationFailed: Self { .init(.authenticationFailed) }
        /// Redis answered with an error reply; its message is kept verbatim (e.g. `WRONGTYPE ...`).
        public static var server: Self { .init(.server) }
        /// The bytes from the server are not valid RESP.
        public static var protocolError: Self { .init(.protocolError) }
        /// No connection is established right now.
        public static var notConnected: Self { .init(.notConnected) }
        /// A Redis URL could not be parsed.
        public static var invalidURL: Self { .init(.invalidURL) }
        /// The command cannot run on this connection (pub/sub and MONITOR on a `RedisClient`).
        public static var unsupportedCommand: Self { .init(.unsupportedCommand) }
        /// A TLS file (CA, certificate, key) could not be loaded, or the TLS settings are inconsistent.
        public static var tlsConfiguration: Self { .init(.tlsConfiguration) }
        /// The server's certificate did not verify against the trusted certificate authorities.
        public static var tlsUntrustedCertificate: Self { .init(.tlsUntrustedCertificate) }
        /// The server's certificate is valid but names another host than the one connected to (or `serverName`).
        public static var tlsHostnameMismatch: Self { .init(.tlsHostnameMismatch) }
        /// The TLS handshake did not finish within `connectTimeout`.
        public static var tlsHandshakeTimeout: Self { .init(.tlsHandshakeTimeout) }
        /// The server refused the handshake for the client's certificate: missing (mutual TLS required), untrusted or expired.
        public static var tlsClientCertificateRejected: Self { .init(.tlsClientCertificateRejected) }
        /// Any other TLS failure: no common protocol or cipher, or a server that does not speak TLS on that port.
        public static var tlsHandshakeFailed: Self { .init(.tlsHandshakeFailed) }
        /// No Sentinel of the configuration answered.
        public static var sentinelUnreachable: Self { .init(.sentinelUnreachable) }
        /// Sentinels answered, but none knows a master by the configured name.
        public static var sentinelMasterUnknown: Self { .init(.sentinelMasterUnknown) }
        /// The server the Sentinels named is not (or no longer) a master: its ROLE says replica, or a write was refused READONLY.
        public static var notMaster: Self { .init(.notMaster) }
        /// A value handed to the client is out of range (a backplane key too short, say).
        public static var invalidArgument: Self { .init(.invalidArgument) }
        /// A node answered CLUSTER SHARDS or CLUSTER SLOTS with something that is not a slot map.
        public static var clusterTopologyInvalid: Self { .init(.clusterTopologyInvalid) }
        /// The cluster nodes asked disagree on the slot map and no view has a majority.
        public static var clusterTopologyInconsistent: Self { .init(.clusterTopologyInconsistent) }
        /// No cluster node (seed or known node) answered with a topology.
        public static var clusterUnreachable: Self { .init(.clusterUnreachable) }
        /// A command was redirected (MOVED, ASK, TRYAGAIN, CLUSTERDOWN) more often than `maxRedirects` allows.
        public static var clusterRedirectLimit: Self { .init(.clusterRedirectLimit) }
        /// Keys or sharded channels that must share one slot do not.
        public static var crossSlot: Self { .init(.crossSlot) }
        /// Redis ended a sharded subscription by itself (its slot moved or its shard failed over);
        /// the subscriber reconnects to the new owner.
        public static var shardSubscriptionMoved: Self { .init(.shardSubscriptionMoved) }

        public var description: String {
            switch base {
            case .connectionRefused: "connectionRefused"
            case .connectionClosed: "connectionClosed"
            case .timeout: "timeout"
            case .authenticationFailed: "authenticationFailed"
            case .server: "server"
            case .protocolError: "protocolError"
            case .notConnected: "notConnected"
            case .invalidURL: "invalidURL"
            case .unsupportedCommand: "unsupportedCommand"
            case .tlsConfiguration: "tlsConfiguration"
            case .tlsUntrustedCertificate: "tlsUntrustedCertificate"
            case .tlsHostnameMismatch: "tlsHostnameMismatch"
            case .tlsHandshakeTimeout: "tlsHandshakeTimeout"
            case .tlsClientCertificateRejected: "tlsClientCertificateRejected"
            case .tlsHandshakeFailed: "tlsHandshakeFailed"
            case .sentinelUnreachable: "sentinelUnreachable"
            case .sentinelMasterUnknown: "sentinelMasterUnknown"
            case .notMaster: "notMaster"
            case .invalidArgument: "invalidArgument"
            case .clusterTopologyInvalid: "clusterTopologyInvalid"
            case .clusterTopologyInconsistent: "clusterTopologyInconsistent"
            case .clusterUnreachable: "clusterUnreachable"
            case .clusterRedirectLimit: "clusterRedirectLimit"
            case .crossSlot: "crossSlot"
            case .shardSubscriptionMoved: "shardSubscriptionMoved"
            }
        }
    }

    public let code: Code
    public let message: String
    public let underlying: (any Error)?
    public let file: String
    public let line: Int

    public init(
        _ code: Code,
        _ message: String,
        underlying: (any Error)? = nil,
        file: String = #fileID,
        line: Int = #line
    ) {
        self.code = code
        self.message = message
        self.underlying = underlying
        self.file = file
        self.line = line
    }

    public var description: String {
        var text = "RedisError(\(code)): \(message)"
        if let underlying {
            text += " (underlying: \(underlying))"
        }
        return text
    }

    /// True for failures that retrying cannot fix without a change of configuration or
    /// certificates; they are reported as such instead of a bare "not connected".
    public var isConfigurationProblem: Bool {
        switch code.base {
        case .authenticationFailed, .tlsConfiguration, .tlsUntrustedCertificate, .tlsHostnameMismatch,
            .tlsClientCertificateRejected, .tlsHandshakeFailed, .sentinelMasterUnknown:
            true
        default:
            false
        }
    }

    /// For a `.server` error, the first word of Redis's message (`WRONGTYPE`, `NOSCRIPT`, `ERR` ...).
    public var serverErrorPrefix: Substring? {
        guard code == .server else { return nil }
        return message.split(separator: " ", maxSplits: 1).first
    }

    /// Redis refused a write because it is at `maxmemory` and may not evict (`-OOM ...`, also
    /// when the refused write ran inside a script).
    public var isOutOfMemory: Bool {
        code == .server && (serverErrorPrefix == "OOM" || message.contains("> 'maxmemory'"))
    }
}
