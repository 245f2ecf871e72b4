/// Reads and writes durations the way operators type them: `250ms`, `30s`, `5m`, `1h`, `1.5s`.
public enum DurationSyntax {
    /// The units accepted, longest suffix first so `ms` is not read as `m` + garbage.
    private static let units: [(suffix: String, nanoseconds: Int64)] = [
        ("ms", 1_000_000),
        ("h", 3_600_000_000_000),
        ("m", 60_000_000_000),
        ("s", 1_000_000_000),
    ]

    /// Parses a non-negative duration with a unit; nil for anything else. A bare number is
    /// rejected on purpose: `30` could mean seconds or milliseconds, and guessing wrong makes
    /// a cache 1000 times more or less stale than intended.
    public static func parse(_ text: String) -> Duration? {
        let trimmed = text.trimmingASCIIWhitespace()
        guard let unit = units.first(where: { trimmed.hasSuffix($0.suffix) }) else { return nil }
        let number = trimmed.dropLast(unit.suffix.count)
        guard let nanoseconds = scaledDecimal(number, by: unit.nanoseconds) else { return nil }
        return .nanoseconds(nanoseconds)
    }

    /// The shortest exact spelling with one unit (`1h`, `90s`, `250ms`), or nanoseconds as `…ms`
    /// with a fraction when nothing whole fits.
    public static func format(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        let nanoseconds = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        guard !nanoseconds.overflow else { return "\(seconds)s" }
        let total = nanoseconds.partialValue + attoseconds / 1_000_000_000
        if total == 0 { return "0s" }
        for (suffix, size) in [("h", Int64(3_600_000_000_000)), ("m", 60_000_000_000), ("s", 1_000_000_000), ("ms", 1_000_000)]
        where total % size == 0 {
            return "\(total / size)\(suffix)"
        }
        let whole = total / 1_000_000
        var fraction = String(total % 1_000_000)
        fraction = String(repeating: "0", count: 6 - fraction.count) + fraction
        while fraction.hasSuffix("0") { fraction.removeLast() }
        return "\(whole).\(fraction)ms"
    }

    /// `digits[.digits] × scale` in whole units, without floating point so `0.1s` is exactly
    /// 100ms; nil on malformed text or overflow.
    static func scaledDecimal(_ text: Substring, by scale: Int64) -> Int64? {
        let parts = text.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        guard let integerText = parts.first, !integerText.isEmpty, integerText.allSatisfy(\.isASCIIDigit) else { return nil }
        guard let integer = Int64(integerText) else { return nil }
        let (product, overflow) = integer.multipliedReportingOverflow(by: scale)
        guard !overflow else { return nil }
        guard parts.count == 2 else { return product }
        let fractionText = parts[1]
        guard !fractionText.isEmpty, fractionText.count <= 9, fractionText.allSatisfy(\.isASCIIDigit),
              let fraction = Int64(fractionText)
        else { return nil }
        var divisor: Int64 = 1
        for _ in 0..<fractionText.count { divisor *= 10 }
        // scale ≤ 3.6e12 and fraction < 1e9 could overflow together; split the scale instead.
        let fractional = (scale / divisor) * fraction + (scale % divisor) * fraction / divisor
        let (sum, sumOverflow) = product.addingReportingOverflow(fractional)
        return sumOverflow ? nil : sum
    }
}

extension Character {
    var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}

extension StringProtocol {
    /// Without leading and trailing spaces and tabs; environment values often carry them.
    func trimmingASCIIWhitespace() -> String {
        var text = Substring(self)
        while let first = text.first, first == " " || first == "\t" { text.removeFirst() }
        while let last = text.last, last == " " || last == "\t" { text.removeLast() }
        return String(text)
    }
}
