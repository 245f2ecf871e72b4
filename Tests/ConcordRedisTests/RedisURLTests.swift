import Testing

@testable import ConcordRedis

@Suite("Redis URL parsing")
struct RedisURLTests {
    typealias Parsed = RedisURLParser.Result

    @Test(arguments: [
        ("redis://localhost", Parsed(host: "localhost", port: 6379, username: nil, password: nil, database: 0)),
        ("redis://127.0.0.1:6380", Parsed(host: "127.0.0.1", port: 6380, username: nil, password: nil, database: 0)),
        ("REDIS://h:1/", Parsed(host: "h", port: 1, username: nil, password: nil, database: 0)),
        ("redis://h/3", Parsed(host: "h", port: 6379, username: nil, password: nil, database: 3)),
        ("redis://:secret@h:7000/2", Parsed(host: "h", port: 7000, username: nil, password: "secret", database: 2)),
        ("redis://alice:secret@h", Parsed(host: "h", port: 6379, username: "alice", password: "secret", database: 0)),
        ("redis://al%40ice:p%3Aw%2Fd%25@h:65535/15", Parsed(host: "h", port: 65535, username: "al@ice", password: "p:w/d%", database: 15)),
        ("redis://u:p@ss@h", Parsed(host: "h", port: 6379, username: "u", password: "p@ss", database: 0)),
        ("redis://u:@h", Parsed(host: "h", port: 6379, username: "u", password: "", database: 0)),
        ("redis://[::1]:6390/1", Parsed(host: "::1", port: 6390, username: nil, password: nil, database: 1)),
        ("redis://[::1]", Parsed(host: "::1", port: 6379, username: nil, password: nil, database: 0)),
        ("redis://:%E2%9C%93@h", Parsed(host: "h", port: 6379, username: nil, password: "✓", database: 0)),
    ])
    func valid(_ url: String, _ expected: Parsed) throws {
        #expect(try RedisURLParser.parse(url) == expected)
    }

    @Test(arguments: [
        "redis+sentinel://h1,h2",  // no master name
        "redis+sentinel://h1,h2/",
        "redis+sentinel://h1,,h2/m",  // empty host
        "redis+sentinel://h1:0/m",
        "redis+sentinel://h1/m/x",  // bad db
        "redis+sentinel://h1/m%20x",  // whitespace in the master name
        "redis+cluster://h/0",
        "http://h",  // other scheme
        "h:6379",  // no scheme
        "redis://",  // no host
        "redis://:6379",  // no host
        "redis://h:",  // empty port
        "redis://h:0",  // port out of range
        "redis://h:65536",
        "redis://h:-1",
        "redis://h:63a9",
        "redis://h:99999999999999999999",
        "redis://h/x",  // bad db
        "redis://h/-1",
        "redis://h/1/2",
        "redis://h/99999999999",
        "redis://h?db=1",  // query
        "redis://h#frag",
        "redis://user@h",  // user without password
        "redis://@h",
        "redis://u:%zz@h",  // bad percent-encoding
        "redis://u:%4@h",
        "redis://[::1:6379",  // unterminated IPv6
        "redis://[::1]x",
        "redis://h h:1",
    ])
    func invalid(_ url: String) {
        let error = #expect(throws: RedisError.self) { try RedisURLParser.parse(url) }
        #expect(error?.code == .invalidURL)
        #expect(error?.message.contains("invalid Redis URL") == true)
    }

    @Test(arguments: [
        ("rediss://h", Parsed(host: "h", port: 6379, username: nil, password: nil, database: 0, tls: true)),
        ("rediss://u:p@h:6380/2", Parsed(host: "h", port: 6380, username: "u", password: "p", database: 2, tls: true)),
        (
            "redis+sentinel://s1,s2:26380,[::1]/mymaster",
            Parsed(
                host: "s1", port: 26379, username: nil, password: nil, database: 0, masterName: "mymaster",
                sentinels: [.init(host: "s1", port: 26379), .init(host: "s2", port: 26380), .init(host: "::1", port: 26379)])
        ),
        (
            "REDISS+SENTINEL://:pw@s1:5000/main/3",
            Parsed(
                host: "s1", port: 5000, username: nil, password: "pw", database: 3, tls: true, masterName: "main",
                sentinels: [.init(host: "s1", port: 5000)])
        ),
    ])
    func tlsAndSentinel(_ url: String, _ expected: Parsed) throws {
        #expect(try RedisURLParser.parse(url) == expected)
    }

    @Test func sentinelURLConfiguresTheSentinelsAndTheirCredentials() throws {
        let configuration = try RedisConfiguration(url: "rediss+sentinel://alice:pw@10.0.0.1,10.0.0.2:26380/cache/1")
        let sentinel = try #require(configuration.sentinel)
        #expect(sentinel.masterName == "cache")
        #expect(sentinel.endpoints == [.init(host: "10.0.0.1", port: 26379), .init(host: "10.0.0.2", port: 26380)])
        #expect(sentinel.username == "alice" && sentinel.password == "pw")
        #expect(configuration.username == "alice" && configuration.password == "pw")
        #expect(configuration.database == 1)
        #expect(configuration.tls == RedisConfiguration.TLS())
        #expect(try RedisConfiguration(url: "redis://h").tls == nil)
        #expect(try RedisConfiguration(url: "redis://h").sentinel == nil)
    }

    @Test func configurationFromURL() throws {
        let configuration = try RedisConfiguration(url: "redis://bob:pw@example:7001/4")
        #expect(configuration.host == "example")
        #expect(configuration.port == 7001)
        #expect(configuration.username == "bob")
        #expect(configuration.password == "pw")
        #expect(configuration.database == 4)
        #expect(configuration.commandTimeout == .seconds(1))
    }

    @Test func passwordIsRedactedInErrors() {
        let error = #expect(throws: RedisError.self) { try RedisConfiguration(url: "redis://u:topsecret@h:bad") }
        #expect(error?.message.contains("topsecret") == false)
    }

    @Test func defaults() {
        let configuration = RedisConfiguration()
        #expect(configuration.host == "127.0.0.1")
        #expect(configuration.port == 6379)
        #expect(configuration.connectTimeout == .seconds(1))
        #expect(configuration.commandTimeout == .seconds(1))
        #expect(configuration.waitForConnectionTimeout == .zero)
        #expect(configuration.reconnect.backoffBase == .milliseconds(100))
        #expect(configuration.reconnect.backoffCap == .seconds(2))
    }
}
