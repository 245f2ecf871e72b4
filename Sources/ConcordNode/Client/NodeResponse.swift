import Foundation

/// A node's answer as `NodeClient` received it, with accessors for the API's headers and its
/// JSON error body.
public struct NodeResponse: Sendable {
    public var status: Int
    /// In the order received; names as sent.
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]

    public init(status: Int, headers: [(name: String, value: String)], body: [UInt8]) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// The first value of a header, its name compared case-insensitively.
    public func header(_ name: String) -> String? {
        let lowered = name.lowercased()
        return headers.first { $0.name.lowercased() == lowered }?.value
    }

    /// The body as UTF-8 text (invalid bytes replaced).
    public var text: String { String(decoding: body, as: UTF8.self) }

    public var isSuccess: Bool { (200..<300).contains(status) }

    /// `Concord-Version` of a GET, PUT or DELETE.
    public var version: String? { header("Concord-Version") }
    /// `Concord-Source`: `memory`, `distributed` or `origin`.
    public var source: String? { header("Concord-Source") }
    /// `Concord-Stale`: whether fail-safe served an expired value.
    public var isStale: Bool { header("Concord-Stale") == "true" }

    /// The `{"error": {"code", "message"}}` body of an error answer, when it has one.
    public var error: (code: String, message: String)? {
        guard let envelope = try? JSONDecoder().decode(JSONBody.ErrorEnvelope.self, from: Data(body)) else { return nil }
        return (envelope.error.code, envelope.error.message)
    }

    /// Decodes a JSON body (stats, a PUT's version, …).
    public func decode<Body: Decodable>(_ type: Body.Type) throws -> Body {
        try JSONDecoder().decode(type, from: Data(body))
    }
}
