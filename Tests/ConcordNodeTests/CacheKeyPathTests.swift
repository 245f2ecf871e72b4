import Concord
import ConcordNode
import Testing

@Suite("Keys in paths")
struct CacheKeyPathTests {
    @Test("the raw path after /v1/cache/ is percent-decoded into the key", arguments: [
        ("/v1/cache/plain", "plain"),
        ("/v1/cache/a/b", "a/b"),
        ("/v1/cache/a%2Fb", "a/b"),
        ("/v1/cache/a%2fb", "a/b"),
        ("/v1/cache/a//b/", "a//b/"),
        ("/v1/cache/with%20space", "with space"),
        ("/v1/cache/plus+stays", "plus+stays"),
        ("/v1/cache/%E2%9C%93", "✓"),
        ("/v1/cache/%25", "%"),
    ])
    func decodes(path: String, key: String) throws {
        #expect(try CacheKeyPath.key(fromRawPath: path) == key)
    }

    @Test("paths that name no valid key are refused", arguments: ["/v1/cache/", "/v1/cache", "/v1/cache/%", "/v1/cache/%4", "/v1/cache/%GG", "/v1/cache/%C3%28"])
    func refuses(path: String) {
        #expect(throws: NodeAPIError.self) { try CacheKeyPath.key(fromRawPath: path) }
    }

    @Test("encoding leaves only unreserved bytes, and decoding gives the key back", arguments: ["a/b", "q?x=1#f", "100%", "ключ", " ", "~._-", "a+b"])
    func roundTrips(key: String) throws {
        let path = CacheKeyPath.path(for: key)
        let encoded = path.dropFirst(CacheKeyPath.prefix.count)
        #expect(encoded.allSatisfy { $0.isLetter && $0.isASCII || $0.isNumber && $0.isASCII || "-._~%".contains($0) })
        #expect(try CacheKeyPath.key(fromRawPath: path) == key)
    }

    @Test("Concord-Version header values parse back into versions")
    func versionHeader() {
        let version = CacheVersion(milliseconds: 1_732_000_000_123, counter: 7, node: "n-1.a_b")
        #expect(CacheVersion(headerValue: version.description) == version)
        #expect(CacheVersion(headerValue: "garbage") == nil)
        #expect(CacheVersion(headerValue: "1.2@") == nil)
        #expect(CacheVersion(headerValue: "x.2@n1") == nil)
    }
}
