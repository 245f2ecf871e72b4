/// The one error type of the Memcached client and L2: a code to switch on, a message for people, and where it came from.
public struct MemcachedError: Error, CustomStringConvertible, Sendable {
    /// What went wrong, as an extensible set of codes (new codes do not break callers' switches).
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        fileprivate enum Base: Hashable, Sendable {
            case connectionRefused
            case connectionClosed
            case timeout
            case notConnected
            case noServers
            case server
            case client
            case protocolError
            case invalidURL
            case invalidKey
            case valueTooLarge
            case casConflict
        }

        fileprivate let base: Base

        private init(_ base: Base) { self.base = base }

        /// The TCP connection could not be established.
        public static var connectionRefused: Self { .init(.connectionRefused) }
        /// The connection closed while a request was in flight, or was closed by the client.
        public static var connectionClosed: Self { .init(.connectionClosed) }
        /// A connect or request deadline passed.
        public static var timeout: Self { .init(.timeout) }
        /// The server that owns the key has no connection right now.
        public static var notConnected: Self { .init(.notConnected) }
        /// Every configured server is down (or none is configured).
        public static var noServers: Self { .init(.noServers) }
        /// Memcached answered `SERVER_ERROR`; its message is kept verbatim.
        public static var server: Self { .init(.server) }
        /// Memcached answered `CLIENT_ERROR` or `ERROR`: it did not accept the request.
        public static var client: Self { .init(.client) }
        /// The bytes from the server are not a meta-protocol response.
        public static var protocolError: Self { .init(.protocolError) }
        /// A `memcached://` URL could not be parsed.
        public static var invalidURL: Self { .init(.invalidURL) }
        /// A key memcached cannot store (empty, too long, spaces or control characters).
        public static var invalidKey: Self { .init(.invalidKey) }
        /// The value is larger than the server's item size limit.
        public static var valueTooLarge: Self { .init(.valueTooLarge) }
        /// A compare-and-set kept losing to concurrent writers within its retry bound.
        public static var casConflict: Self { .init(.casConflict) }

        public var description: String {
            switch base {
            case .connectionRefused: "connectionRefused"
            case .connectionClosed: "connectionClosed"
            case .timeout: "timeout"
            case .notConnected: "notConnected"
            case .noServers: "noServers"
            case .server: "server"
            case .client: "client"
            case .protocolError: "protocolError"
            case .invalidURL: "invalidURL"
            case .invalidKey: "invalidKey"
            case .valueTooLarge: "valueTooLarge"
            case .casConflict: "casConflict"
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
        var text = "MemcachedError(\(code)): \(message)"
        if let underlying {
            text += " (underlying: \(underlying))"
        }
        return text
    }
}
