import Testing

@testable import Concord

/// Write ids come from a counter through SplitMix64's finalizer: never zero, never repeated
/// within the process, and spread over all 64 bits.
@Suite("Write id sequence")
struct WriteIDSequenceTests {
    @Test func idsAreNonZeroAndDistinctAcrossConcurrentDrawers() async {
        let ids = await withTaskGroup(of: [UInt64].self) { group in
            for _ in 0..<4 { group.addTask { (0..<2_000).map { _ in CacheMutation.randomWriteID() } } }
            var all: [UInt64] = []
            for await part in group { all += part }
            return all
        }
        #expect(ids.count == 8_000)
        #expect(!ids.contains(0))
        #expect(Set(ids).count == ids.count)
        #expect(ids.reduce(0, |) == .max)
        #expect(ids.reduce(UInt64.max, &) == 0)
    }

    @Test func theMixIsSplitMix64sFinalizer() {
        // SplitMix64 from seed 0 draws mix(0x9E3779B97F4A7C15) first: 0xE220A8397B1DCDAF.
        #expect(WriteIDSequence.mix(0x9E37_79B9_7F4A_7C15) == 0xE220_A839_7B1D_CDAF)
        #expect(WriteIDSequence.mix(0) == 0)
    }
}
