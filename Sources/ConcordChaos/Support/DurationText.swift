import ConcordNode

/// Durations on the chaos command line and in the node flags the harness passes: the one
/// syntax of every CLI flag (`DurationSyntax`: `250ms`, `30s`, `5m`, `1h`, `1.5s`; a bare
/// number is refused), with its errors as `ChaosError`.
package enum DurationText {
    /// Parses `text`. Throws `ChaosError(.invalidArgument)` for anything `DurationSyntax` refuses.
    package static func parse(_ text: String) throws -> Duration {
        guard let duration = DurationSyntax.parse(text) else {
            throw ChaosError(.invalidArgument, "'\(text)' is not a duration (write 250ms, 30s, 5m or 1h; a bare number is refused)")
        }
        return duration
    }

    /// The shortest exact rendering in the same syntax, for the node flags the harness passes.
    package static func format(_ duration: Duration) -> String {
        DurationSyntax.format(duration)
    }
}
