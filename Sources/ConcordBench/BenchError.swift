/// Why a suite could not run at all (as opposed to a target being missed, which is a result).
public struct BenchError: Error, CustomStringConvertible {
    public let message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { "bench: \(message)" }
}
