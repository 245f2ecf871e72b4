import Foundation
import HTTPTypes
import Hummingbird
import Logging

/// Turns every error a route throws, and the router's own 404, into the API's JSON error body,
/// so clients parse one shape whatever went wrong.
struct ErrorBodyMiddleware<Context: RequestContext>: RouterMiddleware {
    let logger: Logger

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            let apiError = NodeAPIError.from(error, request: request)
            if apiError.status.kind == .serverError {
                logger.warning("request failed", metadata: [
                    "concord.method": .string(request.method.rawValue),
                    "concord.path": .string(NodeAPIError.truncated(request.uri.path)),
                    "concord.error": "\(error)",
                ])
            } else {
                logger.debug("request rejected", metadata: ["concord.error": "\(apiError)"])
            }
            return JSONBody.errorResponse(apiError)
        }
    }
}

/// JSON bodies of the API's answers.
enum JSONBody {
    struct ErrorEnvelope: Codable, Sendable {
        struct Detail: Codable, Sendable {
            var code: String
            var message: String
        }

        var error: Detail
    }

    /// The content type of every JSON answer.
    static let contentType = "application/json"

    static func response<Body: Encodable>(_ body: Body, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
        var fields = headers
        fields[.contentType] = contentType
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: encode(body))))
    }

    /// The bytes of a JSON answer: sorted keys, slashes as they are.
    static func encode<Body: Encodable>(_ body: Body) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array((try? encoder.encode(body)) ?? Data("{}".utf8))
    }

    static func errorResponse(_ error: NodeAPIError) -> Response {
        response(ErrorEnvelope(error: .init(code: error.code, message: error.message)), status: error.status, headers: error.headers)
    }
}
