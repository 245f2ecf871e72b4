/// Arithmetic on numbers that came from the wire (message versions, L2 expiry fields): it
/// saturates at the bounds of `Int64` instead of trapping, so no value another process wrote
/// can end this one.
enum Saturating {
    /// `lhs - rhs`, clamped to the range of `Int64`.
    @inline(__always)
    static func difference(_ lhs: Int64, _ rhs: Int64) -> Int64 {
        let (result, overflow) = lhs.subtractingReportingOverflow(rhs)
        guard overflow else { return result }
        return rhs < 0 ? .max : .min
    }

    /// `lhs + rhs`, clamped to the range of `Int64`.
    @inline(__always)
    static func sum(_ lhs: Int64, _ rhs: Int64) -> Int64 {
        let (result, overflow) = lhs.addingReportingOverflow(rhs)
        guard overflow else { return result }
        return rhs < 0 ? .min : .max
    }
}
