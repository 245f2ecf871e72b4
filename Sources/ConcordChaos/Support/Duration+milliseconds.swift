extension Duration {
    /// Milliseconds as a fraction, the unit reports and JSON use because people read it directly.
    package var milliseconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) * 1_000 + Double(attoseconds) / 1e15
    }

    /// A duration from fractional milliseconds, rounded to the nanosecond.
    package init(milliseconds: Double) {
        self = .nanoseconds(Int64((milliseconds * 1_000_000).rounded()))
    }

    /// Whole nanoseconds, for arithmetic and binary searches.
    var nanosecondsValue: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }

    /// "1.234s" or "56.7ms": short enough for report lines and SVG labels.
    package var shortDescription: String {
        let ms = milliseconds
        if abs(ms) >= 1_000 { return Self.format(ms / 1_000, digits: 3) + "s" }
        return Self.format(ms, digits: 1) + "ms"
    }

    static func format(_ value: Double, digits: Int) -> String {
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let rounded = (value * scale).rounded() / scale
        var text = "\(rounded)"
        if let dot = text.firstIndex(of: ".") {
            let decimals = text.distance(from: dot, to: text.endIndex) - 1
            if decimals < digits { text += String(repeating: "0", count: digits - decimals) }
        } else if digits > 0 {
            text += "." + String(repeating: "0", count: digits)
        }
        return text
    }
}

extension KeyedEncodingContainer {
    mutating func encodeMilliseconds(_ duration: Duration, forKey key: Key) throws {
        try encode(duration.milliseconds, forKey: key)
    }

    mutating func encodeMillisecondsIfPresent(_ duration: Duration?, forKey key: Key) throws {
        try encodeIfPresent(duration?.milliseconds, forKey: key)
    }
}

extension KeyedDecodingContainer {
    func decodeMilliseconds(forKey key: Key) throws -> Duration {
        Duration(milliseconds: try decode(Double.self, forKey: key))
    }

    func decodeMillisecondsIfPresent(forKey key: Key) throws -> Duration? {
        try decodeIfPresent(Double.self, forKey: key).map(Duration.init(milliseconds:))
    }
}
