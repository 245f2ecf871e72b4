import Foundation

/// Number formatting shared by the table and the notes.
enum BenchFormat {
    static func number(_ value: Double, digits: Int) -> String {
        guard value.isFinite else { return value > 0 ? "inf" : "-" }
        return String(format: "%.\(digits)f", value)
    }

    /// Three significant digits or so, without exponent notation, for values of any magnitude.
    static func adaptive(_ value: Double) -> String {
        guard value.isFinite else { return value > 0 ? "inf" : "-" }
        let magnitude = abs(value)
        if magnitude == 0 { return "0" }
        if magnitude >= 1000 { return String(format: "%.0f", value) }
        if magnitude >= 100 { return String(format: "%.1f", value) }
        if magnitude >= 10 { return String(format: "%.2f", value) }
        if magnitude >= 1 { return String(format: "%.2f", value) }
        return String(format: "%.4f", value)
    }
}
