import Concord

extension RedisConfiguration {
    /// Parses a Redis URL; fields the URL does not set keep their defaults.
    ///
    /// - `redis://[user[:password]@]host[:port][/db]` and `rediss://...` (TLS, port 6379 by default);
    /// - `redis+sentinel://[user:password@]host1[:port1],host2[:port2]/masterName[/db]` and
    ///   `rediss+sentinel://...` (Sentinels on port 26379 by default; the credentials are for the
    ///   master and, unless set apart in `sentinel.password`, for the Sentinels too);
    /// - `redis+cluster://[user:password@]host1[:port1],host2[:port2]` and `rediss+cluster://...`
    ///   (seed nodes of a Redis Cluster, port 6379 by default; no database, Cluster has only 0).
    ///
    /// User and password are percent-decoded. Other schemes, query strings, a bad port or a bad
    /// database number throw `RedisError(.invalidURL)`.
    public init(url: String) throws(RedisError) {
        self.init()
        let parsed = try RedisURLParser.parse(url)
        host = parsed.host
        port = parsed.port
        username = parsed.username
        password = parsed.password
        database = parsed.database
        tls = parsed.tls ? TLS() : nil
        if let masterName = parsed.masterName {
            sentinel = Sentinel(
                masterName: masterName,
                endpoints: parsed.sentinels.map { Sentinel.Endpoint(host: $0.host, port: $0.port) },
                username: parsed.username,
                password: parsed.password)
        }
        if parsed.isCluster {
            cluster = Cluster(seeds: parsed.seeds.map { Cluster.Endpoint(host: $0.host, port: $0.port) })
        }
    }
}

enum RedisURLParser {
    struct HostPort: Equatable {
        var host: String
        var port: Int
    }

    struct Result: Equatable {
        var host: String
        var port: Int
        var username: String?
        var password: String?
        var database: Int
        var tls = false
        /// Set for a Sentinel URL, with `sentinels`; `host` and `port` are then the first Sentinel's.
        var masterName: String? = nil
        var sentinels: [HostPort] = []
        /// Set for a cluster URL, with `seeds`; `host` and `port` are then the first seed's.
        var isCluster = false
        var seeds: [HostPort] = []
    }

    static func parse(_ url: String) throws(RedisError) -> Result {
        func invalid(_ reason: String) -> RedisError {
            RedisError(.invalidURL, "invalid Redis URL '\(redacted(url))': \(reason)")
        }

        guard let schemeEnd = url.firstRange(of: "://") else {
            throw invalid("expected redis://[user[:password]@]host[:port][/db]")
        }
        let scheme = url[..<schemeEnd.lowerBound].lowercased()
        let tls: Bool
        let isSentinel: Bool
        var isCluster = false
        switch scheme {
        case "redis": (tls, isSentinel) = (false, false)
        case "rediss": (tls, isSentinel) = (true, false)
        case "redis+sentinel": (tls, isSentinel) = (false, true)
        case "rediss+sentinel": (tls, isSentinel) = (true, true)
        case "redis+cluster": (tls, isSentinel, isCluster) = (false, false, true)
        case "rediss+cluster": (tls, isSentinel, isCluster) = (true, false, true)
        default:
            throw invalid(
                "unsupported scheme '\(scheme)', expected redis://, rediss://, redis+sentinel://, rediss+sentinel://, redis+cluster:// or rediss+cluster://")
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
        var path: Substring
        if let slash = rest.firstIndex(of: "/") {
            authority = rest[..<slash]
            path = rest[rest.index(after: slash)...]
        } else {
            authority = rest
            path = ""
        }

        var masterName: String?
        var hosts: [HostPort]
        if isSentinel {
            hosts = []
            for part in authority.split(separator: ",", omittingEmptySubsequences: false) {
                hosts.append(try hostPort(part, defaultPort: 26_379, invalid))
            }
            let segments = path.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = segments.first, !name.isEmpty else {
                throw invalid("a Sentinel URL names the master: redis+sentinel://host1:26379,host2:26379/mymaster[/db]")
            }
            guard let decoded = PercentDecoding.decode(name.utf8), !decoded.contains(where: { $0.isWhitespace }) else {
                throw invalid("bad master name '\(name)'")
            }
            masterName = decoded
            path = segments.count > 1 ? segments[1] : ""
        } else if isCluster {
            hosts = []
            for part in authority.split(separator: ",", omittingEmptySubsequences: false) {
                hosts.append(try hostPort(part, defaultPort: 6379, invalid))
            }
            guard path.isEmpty else {
                throw invalid("a cluster URL has no database (Redis Cluster only has database 0): redis+cluster://host1:port1,host2:port2")
            }
        } else {
            hosts = [try hostPort(authority, defaultPort: 6379, invalid)]
        }

        var database = 0
        if !path.isEmpty {
            guard path.allSatisfy(\.isASCIIDigit), path.count <= 9, let value = Int(path) else {
                throw invalid("bad database '\(path)', expected a non-negative integer")
            }
            database = value
        }

        return Result(
            host: hosts[0].host, port: hosts[0].port, username: username, password: password, database: database,
            tls: tls, masterName: masterName, sentinels: isSentinel ? hosts : [], isCluster: isCluster, seeds: isCluster ? hosts : [])
    }

    private static func hostPort(
        _ authority: Substring,
        defaultPort: Int,
        _ invalid: (String) -> RedisError
    ) throws(RedisError) -> HostPort {
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

        var port = defaultPort
        if let portText {
            guard !portText.isEmpty, portText.allSatisfy(\.isASCIIDigit), portText.count <= 5,
                let value = Int(portText), (1...65_535).contains(value)
            else {
                throw invalid("bad port '\(portText)', expected 1-65535")
            }
            port = value
        }
        return HostPort(host: String(host), port: port)
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
