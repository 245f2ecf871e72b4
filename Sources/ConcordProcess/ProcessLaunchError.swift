/// A child process could not be started, or did not become ready.
public struct ProcessLaunchError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public let underlying: (any Error)?

    public init(_ message: String, underlying: (any Error)? = nil) {
        self.message = message
        self.underlying = underlying
    }

    public var description: String {
        underlying.map { "\(message): \($0)" } ?? message
    }
}
