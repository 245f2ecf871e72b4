/// Why `NodeClient` got no answer: a bad URL, no connection, a timeout or a broken response.
/// An answer with an error status is not an error here; it is a `NodeResponse`.
public struct NodeClientError: Error, CustomStringConvertible, Sendable {
    /// What went wrong, as an extensible set of codes.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        fileprivate enum Base: String, Hashable, Sendable {
            case invalidURL, connectionFailed, connectionClosed, timeout, protocolError
        }

        fileprivate let base: Base

        /// The node address could not be parsed.
        public static var invalidURL: Self { .init(base: .invalidURL) }
        /// The TCP connection could not be made.
        public static var connectionFailed: Self { .init(base: .connectionFailed) }
        /// The node closed the connection (or reset it) before the answer was complete.
        public static var connectionClosed: Self { .init(base: .connectionClosed) }
        /// No complete answer within the request's time, connecting included.
        public static var timeout: Self { .init(base: .timeout) }
        /// The answer was not well-formed HTTP, or too large.
        public static var protocolError: Self { .init(base: .protocolError) }

        public var description: String { base.rawValue }
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
