/// Reads and writes byte sizes: `1024`, `512B`, `64KiB`, `8MiB`, `1GiB`, and decimal `10KB`.
public enum ByteSizeSyntax {
    /// Binary suffixes (`KiB`, and the bare `K` operators use for it) and decimal ones (`KB`).
    /// Matched case-insensitively, longest first.
    private static let units: [(suffix: String, multiplier: Int64)] = [
        ("kib", 1 << 10), ("mib", 1 << 20), ("gib", 1 << 30),
        ("kb", 1_000), ("mb", 1_000_000), ("gb", 1_000_000_000),
        ("k", 1 << 10), ("m", 1 << 20), ("g", 1 << 30),
        ("b", 1),
    ]

    /// Parses a non-negative whole number of bytes with an optional unit; nil for anything else.
    public static func parse(_ text: String) -> Int? {
        let trimmed = text.trimmingASCIIWhitespace()
        let lowered = trimmed.lowercased()
        var number = Substring(trimmed)
        var multiplier: Int64 = 1
        if let unit = units.first(where: { lowered.hasSuffix($0.suffix) }) {
            number = number.dropLast(unit.suffix.count)
            multiplier = unit.multiplier
        }
        number = Substring(number.trimmingASCIIWhitespace())
        guard !number.isEmpty, number.allSatisfy(\.isASCIIDigit), let value = Int64(number) else { return nil }
        let (bytes, overflow) = value.multipliedReportingOverflow(by: multiplier)
        guard !overflow, bytes <= Int64(Int.max) else { return nil }
        return Int(bytes)
    }

    /// The largest binary unit that divides the size exactly: `8MiB`, `1536KiB`, `1000`.
    public static func format(_ bytes: Int) -> String {
        for (suffix, size) in [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] where bytes != 0 && bytes % size == 0 {
            return "\(bytes / size)\(suffix)"
        }
        return "\(bytes)"
    }
}
