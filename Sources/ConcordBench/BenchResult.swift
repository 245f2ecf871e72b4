/// One figure of `concord bench`: a Concord measurement next to its reference from the same run.
package struct BenchResult: Codable, Sendable, Equatable {
    /// The suite that measured it (`l1`, `l2`, `propagation`, ...).
    package var suite: String
    /// What was measured, e.g. `tryGet, 1 task`.
    package var name: String
    /// Concord's figure: the median over the rounds.
    package var value: Double
    package var unit: String
    /// The reference measured in the same run (median over the rounds), when there is one.
    package var reference: Double?
    /// Concord's figure over the reference. Where each round measures both sides back to back,
    /// the median of the per-round ratios (so a slow spell of a noisy machine hits both sides of
    /// a pair); otherwise `value / reference`.
    package var ratio: Double?
    /// The target in words, e.g. `ratio <= 1.5`.
    package var target: String
    /// Whether the target was met; nil for figures that are informational only.
    package var met: Bool?
    /// The smallest and largest value over the rounds.
    package var valueMin: Double
    package var valueMax: Double
    package var referenceMin: Double?
    package var referenceMax: Double?
    /// Rounds measured.
    package var rounds: Int
    /// Anything a reader needs to interpret the figure (the second reference, a cause).
    package var note: String?
    /// Every round's value and reference, for the distribution plots of `--html`.
    package var samples: [Double]?
    package var referenceSamples: [Double]?
    /// Named figures a plot draws beside value and reference: for hit rate, the cache size as a
    /// fraction of the keyspace and Bélády's optimum.
    package var series: [String: Double]?
    /// The curve of a plot this figure is a point of (hit rate: the trace).
    package var curve: String?

    package init(
        suite: String,
        name: String,
        value: Summary,
        unit: String,
        reference: Summary?,
        ratio: Double?,
        target: String,
        met: Bool?,
        note: String? = nil
    ) {
        self.suite = suite
        self.name = name
        self.value = value.median
        self.unit = unit
        self.reference = reference?.median
        self.ratio = ratio
        self.target = target
        self.met = met
        self.valueMin = value.min
        self.valueMax = value.max
        self.referenceMin = reference?.min
        self.referenceMax = reference?.max
        self.rounds = value.count
        self.note = note
        self.samples = value.samples
        self.referenceSamples = reference?.samples
    }

    /// The median of a set of rounds with its range.
    package struct Summary: Sendable, Equatable {
        package var median: Double
        package var min: Double
        package var max: Double
        package var count: Int
        /// The samples, sorted.
        package var samples: [Double]

        /// Summarizes `samples`; a single sample is its own median, min and max.
        package init(_ samples: [Double]) {
            precondition(!samples.isEmpty, "a summary needs at least one sample")
            let sorted = samples.sorted()
            let middle = sorted.count / 2
            median = sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
            min = sorted.first!
            max = sorted.last!
            count = sorted.count
            self.samples = sorted
        }

        /// A figure that was measured once, or is exact (an ideal).
        package init(exactly value: Double) {
            self.init([value])
        }
    }
}

/// The JSON document written by `--json`: `{"results": [...]}`, plus where it was measured.
package struct BenchReport: Codable, Sendable {
    package var results: [BenchResult]
    /// `nproc`, CPU model, OS, and the options of the run, so figures are never read without their machine.
    package var machine: [String: String]

    package init(results: [BenchResult], machine: [String: String]) {
        self.results = results
        self.machine = machine
    }
}
