extension OriginLocation {
    /// Opens the origin this location names.
    public func open() throws -> any Origin {
        switch self {
        case .sqlite(let path): try SQLiteOrigin(path: path)
        }
    }
}
