/// Failure to start or restart a `RedisServer`.
public struct RedisServerError: Error, CustomStringConvertible {
    public let message: String
    init(_ message: String) { self.message = message }
    public var description: String { "RedisServerError: \(message)" }
}
