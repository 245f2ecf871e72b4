/// The one error type of the `Concord` module: a code that can grow without breaking callers, a message and a cause.
public struct CacheError: Error, CustomStringConvertible, Sendable {
    /// What went wrong, as an extensible set of codes.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        fileprivate enum Base: String, Hashable, Sendable {
            case invalidKey
            case keyTooLong
            case valueTooLarge
            case serializationFailed
            case factoryFailed
            case factoryTimeout
            case distributedFailed
            case distributedTimeout
            case typeMismatch
            case notFound
            case invalidConfiguration
            case invalidMessage
            case unauthenticatedMessage
            case distributedOutOfMemory
            case cancelled
            case writeQueueFull
            case notRunning
            case notReady
        }

        fileprivate let base: Base

        /// The key is empty or contains characters the cache does not accept.
        public static var invalidKey: Self { .init(base: .invalidKey) }
        /// The key is longer than `HybridCacheConfiguration.maxKeyBytes`.
        public static var keyTooLong: Self { .init(base: .keyTooLong) }
        /// The serialized value is larger than `HybridCacheConfiguration.maxValueBytes`.
        public static var valueTooLarge: Self { .init(base: .valueTooLarge) }
        /// The serializer could not encode or decode the value.
        public static var serializationFailed: Self { .init(base: .serializationFailed) }
        /// A loader failed, for loaders that report their failure as a `CacheError` (the node's
        /// origin does). The cache itself rethrows a factory's error as it is, never wrapped.
        public static var factoryFailed: Self { .init(base: .factoryFailed) }
        /// The factory did not finish within its hard timeout and no fail-safe value could be served.
        public static var factoryTimeout: Self { .init(base: .factoryTimeout) }
        /// The distributed cache (L2) failed.
        public static var distributedFailed: Self { .init(base: .distributedFailed) }
        /// The distributed cache (L2) did not answer within its timeout.
        public static var distributedTimeout: Self { .init(base: .distributedTimeout) }
        /// The cached value for this key has another type than the one asked for.
        public static var typeMismatch: Self { .init(base: .typeMismatch) }
        /// The key is absent and there was no way to produce it.
        public static var notFound: Self { .init(base: .notFound) }
        /// A configuration value is out of range.
        public static var invalidConfiguration: Self { .init(base: .invalidConfiguration) }
        /// A backplane message or an L2 envelope could not be decoded.
        public static var invalidMessage: Self { .init(base: .invalidMessage) }
        /// A backplane message or log entry is not signed with a configured backplane key.
        public static var unauthenticatedMessage: Self { .init(base: .unauthenticatedMessage) }
        /// The distributed cache (L2) refused a write because it is full (Redis at `maxmemory`
        /// under the `noeviction` policy).
        public static var distributedOutOfMemory: Self { .init(base: .distributedOutOfMemory) }
        /// The caller was cancelled.
        public static var cancelled: Self { .init(base: .cancelled) }
        /// L2 cannot take the write now and the queue of writes waiting for it is full: nothing
        /// of the write was applied; retry later.
        public static var writeQueueFull: Self { .init(base: .writeQueueFull) }
        /// The operation needs L2 or the backplane, whose connections only `run()` drives, and
        /// `run()` is not active (not started yet, or finished): nothing was written.
        public static var notRunning: Self { .init(base: .notRunning) }
        /// `ready(timeout:)` timed out before L2 connected and the backplane synchronized.
        public static var notReady: Self { .init(base: .notReady) }

        public var description: String { base.rawValue }
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
        var text = "CacheError(\(code)): \(message)"
        if let underlying { text += " (caused by: \(underlying))" }
        return text
    }
}
