/// A node's HTTP answer: status, headers and the whole body.
public struct NodeResponse: Sendable, Hashable {
    public var status: Int
    /// Header names as sent; look them up with `header(_:)`, which ignores case.
    public var headers: [Header]
    public var body: [UInt8]

    /// One header field.
    public struct Header: Sendable, Hashable {
        public var name: String
        public var value: String

        public init(name: String, value: String) {
            self.name = name
            self.value = value
        }
    }

    public init(status: Int, headers: [Header] = [], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    public func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }

    public var isSuccess: Bool { (200..<300).contains(status) }
    public var bodyString: String { String(decoding: body, as: UTF8.self) }
}

/// The answer to `GET /v1/cache/{key}` with Concord's headers decoded.
public struct CacheRead: Sendable, Hashable {
    public var status: Int
    public var body: [UInt8]
    /// `Concord-Version`: the entry's version stamp as the node renders it.
    public var version: String?
    /// `Concord-Source`: which tier answered.
    public var source: Operation.Source?
    /// `Concord-Stale: true`: served by fail-safe.
    public var stale: Bool

    /// 200: the key has a value.
    public var found: Bool { status == 200 }

    init(_ response: NodeResponse) {
        status = response.status
        body = response.body
        version = response.header("Concord-Version")
        source = response.header("Concord-Source").flatMap { Operation.Source(rawValue: $0.lowercased()) }
        stale = response.header("Concord-Stale")?.lowercased() == "true"
    }
}
