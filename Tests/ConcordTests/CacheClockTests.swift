import Concord
import Testing

@Suite("SystemCacheClock")
struct CacheClockTests {
    @Test func coarseReadsNeverRunAheadOfPreciseOnes() {
        let clock = SystemCacheClock()
        #expect(clock.coarseResolution >= .zero && clock.coarseResolution <= SystemCacheClock.maxCoarseResolution)
        for _ in 0..<1_000 {
            let coarse = clock.coarseNow()
            #expect(coarse <= clock.now())
        }
    }

    @Test func withoutCoarseReadsCoarseNowIsPrecise() {
        let clock = SystemCacheClock(allowsCoarseReads: false)
        #expect(clock.coarseResolution == .zero)
        let before = clock.now()
        let reading = clock.coarseNow()
        #expect(before <= reading && reading <= clock.now())
    }
}
