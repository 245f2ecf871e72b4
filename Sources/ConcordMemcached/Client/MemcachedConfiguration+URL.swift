
extension MemcachedConfiguration {
    /// Parses `memcached://host1[:port],host2[:port]` (port 11211 by default; IPv6 in brackets).
    /// An optional `?item-size-limit=BYTES` sets `itemSizeLimit`.
    public init(url: String) throws(MemcachedError) {
        let scheme = "memcached://"
        guard url.lowercased().hasPrefix(scheme) else {
            throw MemcachedError(.invalidURL, "'\(url)' is not a memcached:// URL")
        }
        var rest = Substring(url.dropFirst(scheme.count))
        var query: Substring = ""
        if let mark = rest.firstIndex(of: "?") {
            query = rest[rest.index(after: mark)...]
            rest = rest[..<mark]
        }
        if rest.hasSuffix("/") { rest = rest.dropLast() }
        guard !rest.isEmpty else { throw MemcachedError(.invalidURL, "'\(url)' names no server") }
        var servers: [Server] = []
        for part in rest.split(separator: ",", omittingEmptySubsequences: false) {
            servers.append(try Self.server(part, url: url))
        }
        self.init(servers: servers)
        for pair in query.split(separator: "&") where !pair.isEmpty {
            let field = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard field.count == 2 else { throw MemcachedError(.invalidURL, "'\(pair)' in '\(url)' is not name=value") }
            switch field[0] {
            case "item-size-limit":
                guard let limit = Int(field[1]), limit > 0 else {
                    throw MemcachedError(.invalidURL, "item-size-limit must be a positive number of bytes, not '\(field[1])'")
                }
                itemSizeLimit = limit
            default:
                throw MemcachedError(.invalidURL, "unknown option '\(field[0])' in '\(url)'")
            }
        }
    }

    private static func server(_ text: Substring, url: String) throws(MemcachedError) -> Server {
        guard !text.isEmpty else { throw MemcachedError(.invalidURL, "'\(url)' has an empty server entry") }
        var host: Substring
        var portText: Substring?
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { throw MemcachedError(.invalidURL, "unclosed '[' in '\(text)'") }
            host = text[text.index(after: text.startIndex)..<close]
            let after = text[text.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw MemcachedError(.invalidURL, "unexpected '\(after)' after '\(host)'") }
                portText = after.dropFirst()
            }
        } else if let colon = text.lastIndex(of: ":") {
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
        } else {
            host = text
        }
        guard !host.isEmpty, !host.contains(where: { $0 == "/" || $0 == "@" || $0.isWhitespace }) else {
            throw MemcachedError(.invalidURL, "'\(text)' is not host[:port]")
        }
        var port = 11211
        if let portText {
            guard let value = Int(portText), (1...65535).contains(value) else {
                throw MemcachedError(.invalidURL, "'\(portText)' is not a port (1-65535)")
            }
            port = value
        }
        return Server(host: String(host), port: port)
    }
}
