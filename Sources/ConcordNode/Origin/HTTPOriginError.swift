/// Why an HTTP origin gave no value: a bad URL template, an unreachable or slow upstream, an
/// error status, or a body over the value limit. Thrown from the node's factory, so the cache
/// treats it as a factory error and fail-safe may serve the last value instead.
public struct HTTPOriginError: Error, CustomStringConvertible, Sendable {
    /// What went wrong, as an extensible set of codes.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        fileprivate enum Base: String, Hashable, Sendable {
            case invalidTemplate, unreachable, timeout, badStatus, valueTooLarge, notModifiedWithoutValue
        }

        fileprivate let base: Base

        /// The `--origin` URL template cannot be used.
        public static var invalidTemplate: Self { .init(base: .invalidTemplate) }
        /// No connection to the upstream, or it closed one before answering.
        public static var unreachable: Self { .init(base: .unreachable) }
        /// No complete answer within the origin's deadline.
        public static var timeout: Self { .init(base: .timeout) }
        /// A status that is neither 200, 304 nor 404/410 (a 5xx most often).
        public static var badStatus: Self { .init(base: .badStatus) }
        /// The body is larger than the node's `--max-value-bytes`.
        public static var valueTooLarge: Self { .init(base: .valueTooLarge) }
        /// A 304 for a request that named no cached value.
        public static var notModifiedWithoutValue: Self { .init(base: .notModifiedWithoutValue) }

        public var description: String { base.rawValue }
    }

    public let code: Code
    public let message: String
    /// The upstream's status, when it answered.
    public let status: Int?

    public init(_ code: Code, _ message: String, status: Int? = nil) {
        self.code = code
        self.message = message
        self.status = status
    }

    public var description: String { message }
}
