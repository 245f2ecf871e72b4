extension BenchResult {
    /// For each result in `measured` whose name ends with `suffix`, a diagnostic figure setting it
    /// against the result of the same name without the suffix in `baseline`, measured in the same
    /// run: value and reference are the two medians, the ratio is their quotient.
    static func versus(_ measured: [BenchResult], _ baseline: [BenchResult], suffix: String, suite: String, what: String) -> [BenchResult] {
        measured.compactMap { result in
            guard result.name.hasSuffix(suffix) else { return nil }
            let baseName = String(result.name.dropLast(suffix.count))
            guard let base = baseline.first(where: { $0.name == baseName }), base.value != 0, !base.value.isNaN, !result.value.isNaN else {
                return nil
            }
            return BenchResult(
                suite: suite,
                name: "\(baseName): \(what)",
                value: Summary(result.samples ?? [result.value]),
                unit: result.unit,
                reference: Summary(base.samples ?? [base.value]),
                ratio: result.value / base.value,
                target: "- (diagnostic)",
                met: nil,
                note: "value: the same measurement\(suffix); reference: the same measurement on one redis-server, earlier in this run")
        }
    }
}
