extension OriginLocation {
    /// Opens the origin this location names; an HTTP origin uses `http` for its pool,
    /// deadline and value limit.
    public func open(http: HTTPOrigin.Configuration = .init()) throws -> any Origin {
        switch self {
        case .sqlite(let path): try SQLiteOrigin(path: path)
        case .http(let template): try HTTPOrigin(template: template, configuration: http)
        }
    }
}
