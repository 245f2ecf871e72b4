import ConcordNode
import Testing

/// The duration and size syntax of the node's flags and variables: what parses, what is refused,
/// and that a duration formats back to text that parses.
@Suite("Node configuration: durations and sizes")
struct NodeConfigurationSyntaxTests {
    @Test("durations: ms, s, m, h and fractions", arguments: [
        ("250ms", Duration.milliseconds(250)),
        ("30s", .seconds(30)),
        ("5m", .seconds(300)),
        ("1h", .seconds(3600)),
        ("1.5s", .milliseconds(1500)),
        ("0.1s", .milliseconds(100)),
        ("0ms", .zero),
        (" 2s ", .seconds(2)),
    ])
    func parsesDurations(text: String, expected: Duration) {
        #expect(DurationSyntax.parse(text) == expected)
    }

    @Test("bad durations are rejected", arguments: ["", "30", "s", "ms", "-1s", "5x", "1.s", ".5s", "1e3ms", "5 m", "99999999999999999h", "1.0000000001s"])
    func rejectsDurations(text: String) {
        #expect(DurationSyntax.parse(text) == nil)
    }

    @Test("durations format back to what parses", arguments: [Duration.milliseconds(250), .seconds(30), .seconds(300), .seconds(3600), .seconds(90), .milliseconds(1500), .microseconds(100)])
    func formatsDurations(duration: Duration) {
        #expect(DurationSyntax.parse(DurationSyntax.format(duration)) == duration)
    }

    @Test("sizes: bytes, binary and decimal units", arguments: [
        ("1024", 1024), ("512B", 512), ("64KiB", 65_536), ("8MiB", 8_388_608), ("1GiB", 1_073_741_824),
        ("10KB", 10_000), ("2MB", 2_000_000), ("4k", 4096), ("8mib", 8_388_608), ("0", 0),
    ])
    func parsesSizes(text: String, expected: Int) {
        #expect(ByteSizeSyntax.parse(text) == expected)
    }

    @Test("bad sizes are rejected", arguments: ["", "MiB", "-1", "1.5MiB", "8 XB", "ten", "99999999999999999999", "9999999999999GiB"])
    func rejectsSizes(text: String) {
        #expect(ByteSizeSyntax.parse(text) == nil)
    }
}
