import ConcordChaos
import Testing

/// The soak rule: steady growth is flagged, noise, plateaus and short runs are not.
@Suite struct GrowthRuleTests {
    /// One sample a second for `minutes`, resident memory from `bytes(second)`.
    private func series(minutes: Int, files: (Int) -> Int = { _ in 20 }, _ bytes: (Int) -> Int) -> ResourceSeries {
        ResourceSeries(process: "n1", samples: (0..<(minutes * 60)).map {
            ResourceSample(time: .seconds($0), residentBytes: bytes($0), openFiles: files($0))
        })
    }

    @Test func aSteadyLeakIsFlagged() {
        // 50 MiB growing by 10 KiB a second: +36 MiB over an hour.
        let leaking = series(minutes: 60) { 50 << 20 + $0 * 10_240 }
        let (memory, files) = leaking.growth()
        #expect(memory.growing)
        #expect(memory.medians.count == 4)
        #expect(zip(memory.medians, memory.medians.dropFirst()).allSatisfy { $0 < $1 })
        #expect(!files.growing)
    }

    @Test func aPlateauAfterWarmUpAndNoiseAreNot() {
        // Fills for the first few minutes, then flat with ±2 MiB of noise.
        let plateau = series(minutes: 60) { second in
            min(second, 300) * 100_000 + 40 << 20 + (second * 7_919 % 4_194_304)
        }
        #expect(!plateau.growth().memory.growing)
    }

    @Test func leakingDescriptorsAreFlagged() {
        let files = series(minutes: 30, files: { 20 + $0 / 60 }) { _ in 50 << 20 }
        let (memory, descriptors) = files.growth()
        #expect(descriptors.growing)
        #expect(!memory.growing)
    }

    @Test func aShortRunGetsNoVerdict() {
        let short = series(minutes: 2) { 50 << 20 + $0 * 1_048_576 }
        let memory = short.growth().memory
        #expect(!memory.growing)
        #expect(memory.medians.isEmpty)
        #expect(memory.reason.contains("too short"))
    }
}
