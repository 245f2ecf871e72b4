import Testing

@testable import ConcordRedis

@Suite("Script names (SHA-1 through swift-crypto)")
struct RedisScriptTests {
    @Test(arguments: [
        ("", "da39a3ee5e6b4b0d3255bfef95601890afd80709"),
        ("abc", "a9993e364706816aba3e25717850c26c9cd0d89d"),
        ("The quick brown fox jumps over the lazy dog", "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12"),
        (String(repeating: "x", count: 64), "bb2fa3ee7afb9f54c6dfb5d021f14b1ffe40c163"),
    ])
    func scriptIsNamedByTheSHA1OfItsSource(_ source: String, _ digest: String) {
        #expect(RedisScript(source).sha1 == digest)
    }

    @Test func aScriptNamesItselfTheWayRedisDoes() {
        #expect(RedisScript("return 1").sha1 == "e0e1f9fabfc9d4800c877a703b823ac0578ff8db")
    }
}
