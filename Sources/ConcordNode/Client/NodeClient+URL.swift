extension NodeClient {
    /// The host and port of `http://host:port` or `https://host:port`; a trailing `/` is fine,
    /// the scheme may be left out (http), an IPv6 host is written in brackets and the port
    /// defaults to 80 (443 for https).
    static func address(of url: String) throws(NodeClientError) -> (host: String, port: Int, secure: Bool) {
        var rest = Substring(url.trimmingASCIIWhitespace())
        var secure = false
        if rest.hasPrefix("http://") {
            rest = rest.dropFirst("http://".count)
        } else if rest.hasPrefix("https://") {
            rest = rest.dropFirst("https://".count)
            secure = true
        } else if rest.contains("://") {
            throw NodeClientError(.invalidURL, "'\(url)': only http:// and https:// are supported")
        }
        while rest.hasSuffix("/") { rest = rest.dropLast() }
        guard !rest.contains("/"), !rest.contains("?") else {
            throw NodeClientError(.invalidURL, "'\(url)': give the node's address only, like http://127.0.0.1:7001")
        }
        let host: Substring
        let portText: Substring?
        if rest.hasPrefix("["), let close = rest.firstIndex(of: "]") {
            host = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            portText = after.hasPrefix(":") ? after.dropFirst() : (after.isEmpty ? nil : after)
        } else if let colon = rest.lastIndex(of: ":") {
            host = rest[..<colon]
            portText = rest[rest.index(after: colon)...]
        } else {
            host = rest
            portText = nil
        }
        guard !host.isEmpty else { throw NodeClientError(.invalidURL, "'\(url)': no host") }
        var port = secure ? 443 : 80
        if let portText {
            guard let parsed = Int(portText), (1...65_535).contains(parsed) else {
                throw NodeClientError(.invalidURL, "'\(url)': '\(portText)' is not a port")
            }
            port = parsed
        }
        return (String(host), port, secure)
    }
}
