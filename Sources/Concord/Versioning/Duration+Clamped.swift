extension Duration {
    /// This duration in nanoseconds, clamped to the range of `Int64`.
    package var nanosecondsClamped: Int64 {
        let (seconds, attoseconds) = components
        let (secondsNanos, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return seconds < 0 ? .min : .max }
        let (sum, overflow2) = secondsNanos.addingReportingOverflow(attoseconds / 1_000_000_000)
        if overflow2 { return seconds < 0 ? .min : .max }
        return sum
    }

    /// This duration in whole milliseconds, clamped to the range of `Int64`.
    package var millisecondsClamped: Int64 { nanosecondsClamped / 1_000_000 }
}
