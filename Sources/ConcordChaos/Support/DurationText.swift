import Foundation

/// Durations as people type them on the command line: `250ms`, `30s`, `5m`, `1h`, or a decimal
/// such as `1.5s` (DESIGN.md's syntax for every duration flag).
package enum DurationText {
    /// Parses `text`; a bare number is taken as seconds. Throws `ChaosError(.invalidArgument)`.
    package static func parse(_ text: String) throws -> Duration {
        let trimmed = text.trimmingCharacters(in: .whitespaces).lowercased()
        let units: [(suffix: String, milliseconds: Double)] = [("ms", 1), ("s", 1_000), ("m", 60_000), ("h", 3_600_000)]
        for unit in units where trimmed.hasSuffix(unit.suffix) {
            let number = trimmed.dropLast(unit.suffix.count)
            // "5ms" also ends in "s"; the longer suffix is tried first, and "5m" must not match "ms".
            if let value = Double(number), value >= 0, value.isFinite {
                return Duration(milliseconds: value * unit.milliseconds)
            }
        }
        if let seconds = Double(trimmed), seconds >= 0, seconds.isFinite {
            return Duration(milliseconds: seconds * 1_000)
        }
        throw ChaosError(.invalidArgument, "'\(text)' is not a duration (write 250ms, 30s, 5m or 1h)")
    }

    /// The shortest exact rendering in the same syntax, for the node flags the harness passes.
    package static func format(_ duration: Duration) -> String {
        let milliseconds = Int64(duration.milliseconds.rounded())
        if milliseconds % 3_600_000 == 0, milliseconds > 0 { return "\(milliseconds / 3_600_000)h" }
        if milliseconds % 60_000 == 0, milliseconds > 0 { return "\(milliseconds / 60_000)m" }
        if milliseconds % 1_000 == 0, milliseconds > 0 { return "\(milliseconds / 1_000)s" }
        return "\(milliseconds)ms"
    }
}
