/// Where a node's origin lives, as written after `--origin`: `sqlite:PATH`, or an HTTP(S) URL
/// template with `{key}` where the percent-encoded key goes.
public enum OriginLocation: Sendable, Equatable, CustomStringConvertible {
    /// A SQLite file holding `items(key TEXT PRIMARY KEY, value BLOB, version INTEGER)`.
    case sqlite(path: String)
    /// An upstream HTTP service: a miss is a GET of the template with `{key}` filled in.
    case http(template: String)

    /// Parses `sqlite:PATH` (also `sqlite://PATH`, so `sqlite:///abs/path` means `/abs/path`) or
    /// `http(s)://host[:port]/path/{key}`; nil for another scheme, an empty path or a URL
    /// template without `{key}`.
    public init?(parsing text: String) {
        let trimmed = text.trimmingASCIIWhitespace()
        if trimmed.hasPrefix("http://") || trimmed.hasPrefix("https://") {
            guard (try? OriginURLTemplate(trimmed)) != nil else { return nil }
            self = .http(template: trimmed)
            return
        }
        guard trimmed.hasPrefix("sqlite:") else { return nil }
        var path = Substring(trimmed.dropFirst("sqlite:".count))
        if path.hasPrefix("//") { path = path.dropFirst(2) }
        guard !path.isEmpty else { return nil }
        self = .sqlite(path: String(path))
    }

    public var description: String {
        switch self {
        case .sqlite(let path): "sqlite:\(path)"
        case .http(let template): template
        }
    }
}
