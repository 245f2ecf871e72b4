/// Failure to start or restart a `MemcachedServer`.
public struct MemcachedServerError: Error, CustomStringConvertible {
    public let message: String
    init(_ message: String) { self.message = message }
    public var description: String { "MemcachedServerError: \(message)" }
}
