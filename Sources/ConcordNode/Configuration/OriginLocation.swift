/// Where a node's origin lives, as written after `--origin`: today only `sqlite:PATH`.
public enum OriginLocation: Sendable, Equatable, CustomStringConvertible {
    /// A SQLite file holding `items(key TEXT PRIMARY KEY, value BLOB, version INTEGER)`.
    case sqlite(path: String)

    /// Parses `sqlite:PATH` (also `sqlite://PATH`, so `sqlite:///abs/path` means `/abs/path`);
    /// nil for another scheme or an empty path.
    public init?(parsing text: String) {
        let trimmed = text.trimmingASCIIWhitespace()
        guard trimmed.hasPrefix("sqlite:") else { return nil }
        var path = Substring(trimmed.dropFirst("sqlite:".count))
        if path.hasPrefix("//") { path = path.dropFirst(2) }
        guard !path.isEmpty else { return nil }
        self = .sqlite(path: String(path))
    }

    public var description: String {
        switch self {
        case .sqlite(let path): "sqlite:\(path)"
        }
    }
}
