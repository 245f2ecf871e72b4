import Concord
import ConcordNode
import Foundation
import Testing

@Suite("Node backplane key file and clock flags")
struct NodeBackplaneKeyTests {
    func withFile<T>(_ contents: String, _ body: (String) throws -> T) throws -> T {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("concord-key-\(UUID().uuidString)")
        try Data(contents.utf8).write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        return try body(url.path)
    }

    @Test func aKeyFileHoldsOneOrTwoKeysTheFirstSigning() throws {
        let keys = try withFile("  0123456789abcdef0123456789abcdef \n\nfedcba9876543210\r\n") { path in
            try NodeConfiguration(flags: ["backplane-key-file": path], environment: [:]).backplaneKeys()
        }
        #expect(keys == [Array("0123456789abcdef0123456789abcdef".utf8), Array("fedcba9876543210".utf8)])
    }

    @Test(arguments: ["", "\n\n", "short\n", "0123456789abcdef\n0123456789abcdef\n0123456789abcdef\n"])
    func aKeyFileWithoutUsableKeysIsAClearError(contents: String) throws {
        try withFile(contents) { path in
            let configuration = try NodeConfiguration(flags: ["backplane-key-file": path], environment: [:])
            #expect(throws: NodeConfigurationError.self) { try configuration.backplaneKeys() }
        }
    }

    @Test func aMissingKeyFileIsAClearErrorAndNoFileMeansUnsigned() throws {
        let configuration = try NodeConfiguration(flags: ["backplane-key-file": "/nonexistent/concord.key"], environment: [:])
        #expect(throws: NodeConfigurationError.self) { try configuration.backplaneKeys() }
        #expect(try NodeConfiguration(flags: [:], environment: [:]).backplaneKeys() == nil)
    }

    @Test func clockDriftAndTheTestOffsetParse() throws {
        let configuration = try NodeConfiguration(
            flags: ["max-clock-drift": "30s", "test-clock-offset": "-25s"], environment: ["CONCORD_BACKPLANE_KEY_FILE": "/k"]
        )
        #expect(configuration.maxClockDrift == .seconds(30))
        #expect(configuration.cacheConfiguration.maxClockDrift == .seconds(30))
        #expect(configuration.testClockOffset == .seconds(-25))
        #expect(configuration.backplaneKeyFile == "/k")
        #expect(throws: NodeConfigurationError.self) { try NodeConfiguration(flags: ["test-clock-offset": "-x"], environment: [:]) }
        #expect(throws: NodeConfigurationError.self) { try NodeConfiguration(flags: ["max-clock-drift": "0s"], environment: [:]) }
    }
}
