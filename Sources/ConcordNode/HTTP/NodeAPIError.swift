import Concord
import HTTPTypes
import Hummingbird
import NIOCore

/// An error answer of the node's HTTP API: a status, a stable code for programs and a message
/// for people, sent as `{"error": {"code": ..., "message": ...}}`.
public struct NodeAPIError: Error, Sendable, Equatable, CustomStringConvertible {
    public var status: HTTPResponse.Status
    /// camelCase, like `CacheError.Code`: `invalidKey`, `keyTooLong`, `valueTooLarge`, …
    public var code: String
    public var message: String
    /// Extra headers, such as `Allow` on a 405.
    public var headers: HTTPFields

    public init(_ status: HTTPResponse.Status, code: String, message: String, headers: HTTPFields = [:]) {
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
    }

    public var description: String { "\(status.code) \(code): \(message)" }

    static func invalidKey(_ message: String) -> Self { .init(.badRequest, code: "invalidKey", message: message) }
    static func keyNotFound(_ key: String) -> Self { .init(.notFound, code: "notFound", message: "no value for key '\(truncated(key))'") }
    static func routeNotFound(_ method: HTTPRequest.Method, _ path: String) -> Self {
        .init(.notFound, code: "routeNotFound", message: "no route for \(method.rawValue) \(truncated(path))")
    }
    static func methodNotAllowed(_ method: HTTPRequest.Method, allowed: [HTTPRequest.Method]) -> Self {
        let allow = allowed.map(\.rawValue).joined(separator: ", ")
        return .init(.methodNotAllowed, code: "methodNotAllowed", message: "\(method.rawValue) is not allowed here; use \(allow)", headers: [.allow: allow])
    }
    static func valueTooLarge(limit: Int) -> Self {
        // Closing the connection stops a client that is still streaming a huge body.
        .init(.contentTooLarge, code: "valueTooLarge", message: "the value is larger than the limit of \(limit) bytes", headers: [.connection: "close"])
    }

    /// Keys and paths are echoed in messages; long ones are cut so an error stays readable.
    static func truncated(_ text: String, limit: Int = 128) -> String {
        text.count <= limit ? text : String(text.prefix(limit)) + "…"
    }

    /// The answer for any error a handler throws: cache errors by code, Hummingbird's own
    /// errors by status, and everything else as a 500 whose details stay in the log.
    static func from(_ error: any Error, request: Request) -> NodeAPIError {
        switch error {
        case let error as NodeAPIError:
            return error
        case let error as CacheError:
            return from(error)
        case is NIOTooManyBytesError:
            return .init(.contentTooLarge, code: "valueTooLarge", message: "the request body is too large", headers: [.connection: "close"])
        case let error as HTTPError where error.status == .notFound:
            return .routeNotFound(request.method, request.uri.path)
        case let error as any HTTPResponseError:
            let status = error.status
            return .init(status, code: code(for: status), message: status.reasonPhrase)
        default:
            return .init(.internalServerError, code: "internalError", message: "internal error")
        }
    }

    static func from(_ error: CacheError) -> NodeAPIError {
        switch error.code {
        case .invalidKey: .init(.badRequest, code: "invalidKey", message: error.message)
        case .keyTooLong: .init(.badRequest, code: "keyTooLong", message: error.message)
        case .valueTooLarge: .init(.contentTooLarge, code: "valueTooLarge", message: error.message)
        case .notFound: .init(.notFound, code: "notFound", message: error.message)
        case .factoryFailed:
            // An HTTP origin's own failure says more than the cache's wrapper around it.
            if let origin = error.underlying as? HTTPOriginError {
                .init(origin.code == .timeout ? .gatewayTimeout : .badGateway, code: "origin\(origin.code.description.prefix(1).uppercased())\(origin.code.description.dropFirst())", message: origin.message)
            } else {
                .init(.serviceUnavailable, code: "originUnavailable", message: error.message)
            }
        case .factoryTimeout: .init(.serviceUnavailable, code: "originTimeout", message: error.message)
        case .distributedFailed, .distributedTimeout: .init(.serviceUnavailable, code: "redisUnavailable", message: error.message)
        case .cancelled: .init(.serviceUnavailable, code: "cancelled", message: error.message)
        case .writeQueueFull: .init(.serviceUnavailable, code: "writeQueueFull", message: error.message, headers: [.retryAfter: "1"])
        case .notRunning, .notReady: .init(.serviceUnavailable, code: "notReady", message: error.message, headers: [.retryAfter: "1"])
        default: .init(.internalServerError, code: "\(error.code)", message: error.message)
        }
    }

    private static func code(for status: HTTPResponse.Status) -> String {
        switch status.code {
        case 400: "badRequest"
        case 404: "notFound"
        case 405: "methodNotAllowed"
        case 408: "requestTimeout"
        case 413: "valueTooLarge"
        case 503: "unavailable"
        default: status.code < 500 ? "badRequest" : "internalError"
        }
    }
}
