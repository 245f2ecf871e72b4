import Concord

extension RedisConfiguration {
    /// Parses `redis://[user[:password]@]host[:port][/db]`; other fields keep their defaults.
    ///
    /// User and password are percent-decoded. `rediss://` (TLS), other schemes, query strings,
    /// a bad port or a bad database number throw `RedisError(.invalidURL)`.
    public init(url: String) throws(RedisError) {
        self.init()
        let parsed = try RedisURLParser.parse(url)
        host = parsed.host
        port = parsed.port
        username = parsed.username
        password = parsed.password
        database = parsed.database
    }
}

enum RedisURLParser {
    struct Result: Equatable {
        var host: String
        var port: Int
        var username: String?
        var password: String?
        var database: Int
    }

    static func parse(_ url: String) throws(RedisError) -> Result {
        func invalid(_ reason: String) -> RedisError {
            RedisError(.invalidURL, "invalid Redis URL '\(redacted(url))': \(reason)")
        }

        guard let schemeEnd = url.firstRange(of: "://") else {
            throw invalid("expected redis://[user[:password]@]host[:port][/db]")
        }
        let scheme = url[..<schemeEnd.lowerBound].lowercased()
        switch scheme {
        case "redis": break
        case "rediss": throw invalid("TLS (rediss://) is not supported")
        default: throw invalid("unsupported scheme '\(scheme)', expected redis://")
        }
        var rest = url[schemeEnd.upperBound...]

        if rest.contains("?") || rest.contains("#") {
            throw invalid("query strings and fragments are not supported")
        }

        // The last '@' ends the user info, so an unencoded '@' or '/' in a password still parses.
        var username: String?
        var password: String?
        if let at = rest.lastIndex(of: "@") {
            let userInfo = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = userInfo.firstIndex(of: ":") {
                let user = try percentDecode(userInfo[..<colon], invalid)
                username = user.isEmpty ? nil : user
                password = try percentDecode(userInfo[userInfo.index(after: colon)...], invalid)
            } else if userInfo.isEmpty {
                throw invalid("empty user info before '@'")
            } else {
                throw invalid("a user name needs a password (redis://user:password@host)")
            }
        }

        let authority: Substring
        let path: Substring
        if let slash = rest.firstIndex(of: "/") {
            authority = rest[..<slash]
            path = rest[rest.index(after: slash)...]
        } else {
            authority = rest
            path = ""
        }

        var host: Substring
        var portText: Substring?
        if authority.hasPrefix("[") {
            // IPv6 literal: [::1]:6379
            guard let close = authority.firstIndex(of: "]") else { throw invalid("unterminated IPv6 address") }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw invalid("unexpected characters after IPv6 address") }
                portText = after.dropFirst()
            }
        } else if let colon = authority.firstIndex(of: ":") {
            host = authority[..<colon]
            portText = authority[authority.index(after: colon)...]
        } else {
            host = authority
        }
        guard !host.isEmpty else { throw invalid("missing host") }
        if host.contains(where: \.isWhitespace) {
            throw invalid("bad host '\(host)'")
        }

        var port = 6379
        if let portText {
            guard !portText.isEmpty, portText.allSatisfy(\.isASCIIDigit), portText.count <= 5,
                let value = Int(portText), (1...65_535).contains(value)
            else {
                throw invalid("bad port '\(portText)', expected 1-65535")
            }
            port = value
        }

        var database = 0
        if !path.isEmpty {
            guard path.allSatisfy(\.isASCIIDigit), path.count <= 9, let value = Int(path) else {
                throw invalid("bad database '\(path)', expected a non-negative integer")
            }
            database = value
        }

        return Result(host: String(host), port: port, username: username, password: password, database: database)
    }

    private static func percentDecode(
        _ text: Substring,
        _ invalid: (String) -> RedisError
    ) throws(RedisError) -> String {
        guard let decoded = PercentDecoding.decode(text.utf8) else {
            throw invalid("bad percent-encoding (or not UTF-8) in user info")
        }
        return decoded
    }

    /// Keeps passwords out of error messages and logs.
    static func redacted(_ url: String) -> String {
        RedisConfiguration.redacted(url: url)
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}
