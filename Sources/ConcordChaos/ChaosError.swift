/// The one error type of the chaos harness: a code that can grow without breaking callers, plus context.
package struct ChaosError: Error, CustomStringConvertible, Sendable {
    /// What went wrong, as an extensible set of codes rather than a growing enum.
    package struct Code: Hashable, Sendable, CustomStringConvertible {
        fileprivate enum Base: String, Hashable, Sendable {
            case timeout
            case invalidResponse
            case invalidArgument
            case proxyStopped
            case io
            case setupFailed
            case processFailed
        }

        fileprivate let base: Base

        /// A request or connect did not finish before its deadline.
        package static var timeout: Self { .init(base: .timeout) }
        /// The peer answered something that is not valid for the protocol.
        package static var invalidResponse: Self { .init(base: .invalidResponse) }
        /// A caller passed a value the harness cannot use.
        package static var invalidArgument: Self { .init(base: .invalidArgument) }
        /// The fault proxy was already stopped.
        package static var proxyStopped: Self { .init(base: .proxyStopped) }
        /// Reading or writing a file failed.
        package static var io: Self { .init(base: .io) }
        /// A part of the test bed (redis-server, a node, the origin) could not be started.
        package static var setupFailed: Self { .init(base: .setupFailed) }
        /// A child process could not be launched, or exited when it should not have.
        package static var processFailed: Self { .init(base: .processFailed) }

        package var description: String { base.rawValue }
    }

    package let code: Code
    package let message: String
    package let underlying: (any Error)?
    package let file: String
    package let line: Int

    package init(
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

    package var description: String {
        var text = "ChaosError(\(code)): \(message)"
        if let underlying { text += " (underlying: \(underlying))" }
        return text + " [\(file):\(line)]"
    }
}
