/// An HTTP origin's URL with `{key}` placeholders, e.g. `http://127.0.0.1:8080/items/{key}`:
/// each placeholder becomes the key with every byte outside RFC 3986's unreserved set
/// percent-encoded, so a key cannot add path segments, a query or a fragment.
public struct OriginURLTemplate: Sendable, Equatable {
    public static let placeholder = "{key}"

    /// The text before, between and after the placeholders.
    private let parts: [String]

    /// Throws `HTTPOriginError(.invalidTemplate)` for a scheme other than http(s), no host, or
    /// no `{key}` in the path or query.
    public init(_ template: String) throws(HTTPOriginError) {
        let lower = template.lowercased()
        let rest: Substring
        if lower.hasPrefix("http://") {
            rest = template.dropFirst("http://".count)
        } else if lower.hasPrefix("https://") {
            rest = template.dropFirst("https://".count)
        } else {
            throw HTTPOriginError(.invalidTemplate, "'\(template)': an HTTP origin starts with http:// or https://")
        }
        let authority = rest.prefix { $0 != "/" && $0 != "?" }
        guard !authority.isEmpty, !authority.contains(Self.placeholder) else {
            throw HTTPOriginError(.invalidTemplate, "'\(template)': no host (the key may go only in the path or query)")
        }
        let parts = template.split(separator: Self.placeholder, omittingEmptySubsequences: false).map(String.init)
        guard parts.count >= 2 else {
            throw HTTPOriginError(.invalidTemplate, "'\(template)': put {key} where the key goes, e.g. http://host:8080/items/{key}")
        }
        self.parts = parts
    }

    /// The URL for `key`.
    public func url(for key: String) -> String {
        parts.joined(separator: CacheKeyPath.percentEncode(key))
    }
}
