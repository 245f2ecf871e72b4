@_spi(ConcordBackend) import Concord
import ConcordTesting
import Testing

@Suite("Versions, envelopes and backplane messages")
struct VersionAndCodecTests {
    @Test func versionsOrderByMillisecondsThenCounterThenNode() {
        let a = CacheVersion(milliseconds: 10, counter: 5, node: "z")
        let b = CacheVersion(milliseconds: 11, counter: 0, node: "a")
        let c = CacheVersion(milliseconds: 11, counter: 1, node: "a")
        let d = CacheVersion(milliseconds: 11, counter: 1, node: "b")
        #expect(a < b && b < c && c < d)
        #expect([d, b, a, c].sorted() == [a, b, c, d])
    }

    @Test func orderedTextSortsLikeVersionsAndRoundTrips() {
        var generator = SystemRandomNumberGenerator()
        let nodes = ["a", "b", "node-1", "node-10", "Z"]
        let versions = (0..<500).map { _ in
            CacheVersion(
                milliseconds: Int64.random(in: 0...3, using: &generator) * 1_000_000_000_000 + Int64.random(in: 0...3, using: &generator),
                counter: UInt32.random(in: 0...3, using: &generator),
                node: nodes.randomElement(using: &generator)!
            )
        }
        for version in versions {
            #expect(CacheVersion(orderedText: version.orderedText) == version)
        }
        let byVersion = versions.sorted()
        let byText = versions.sorted { $0.orderedText.utf8.lexicographicallyPrecedes($1.orderedText.utf8) }
        #expect(byVersion == byText)
    }

    @Test func malformedOrderedTextIsRejected() {
        for text in ["", "xyz", String(repeating: "g", count: 24), "0000000000000001" + "0000000", "0000000000000001" + "00000000" + "bad node"] {
            #expect(CacheVersion(orderedText: text) == nil)
        }
    }

    @Test func theClockGrowsAndStaysAheadOfWhatItObserves() {
        let clock = ManualClock(wallMilliseconds: 1_000)
        let hlc = HybridLogicalClock(node: "n", clock: clock)
        let first = hlc.next()
        let second = hlc.next()
        #expect(second > first)
        #expect(second.milliseconds == 1_000 && second.counter == 1)
        // A message from a node whose clock runs far ahead.
        let remote = CacheVersion(milliseconds: 5_000, counter: 7, node: "other")
        hlc.observe(remote)
        let third = hlc.next()
        #expect(third > remote)
        // Wall time catching up resets the counter.
        clock.advance(by: .seconds(10))
        let fourth = hlc.next()
        #expect(fourth > third && fourth.counter == 0 && fourth.milliseconds == 11_000)
    }

    /// Two nodes took the same lead from a clock that ran ahead; one then made many writes, the
    /// other heard none of them. The quiet node's later write still orders after them, because
    /// while the lead lasts the milliseconds advance with time instead of only the counters.
    @Test func whileAheadOfTheWallClockVersionsKeepRealTimeOrderAcrossNodes() {
        let clock = ManualClock(wallMilliseconds: 100_000)
        let busy = HybridLogicalClock(node: "busy", clock: clock)
        let quiet = HybridLogicalClock(node: "quiet", clock: clock)
        let lead = CacheVersion(milliseconds: 120_000, counter: 3, node: "ahead")
        busy.observe(lead)
        quiet.observe(lead)
        clock.advance(by: .milliseconds(10))
        var busiest = busy.next()
        for _ in 0..<1_000 { busiest = busy.next() }
        clock.advance(by: .milliseconds(100))
        let later = quiet.next()
        #expect(later > busiest, "\(later) must order after \(busiest)")
        #expect(later.milliseconds == 120_055 && later.counter == 0)
    }

    /// Two nodes took the same lead; 10 s later one made a version (the lead has advanced 5 s),
    /// and the other, which had made none since, then hears a delayed version from early in the
    /// lead. That must not set it back: its next write orders after the first node's.
    @Test func aDelayedVersionHeardDuringALeadDoesNotSetTheClockBack() {
        let clock = ManualClock(wallMilliseconds: 100_000)
        let writer = HybridLogicalClock(node: "writer", clock: clock)
        let listener = HybridLogicalClock(node: "listener", clock: clock)
        let lead = CacheVersion(milliseconds: 120_000, counter: 0, node: "ahead")
        writer.observe(lead)
        listener.observe(lead)
        clock.advance(by: .seconds(10))
        let written = writer.next()
        #expect(written.milliseconds == 125_000)
        listener.observe(CacheVersion(milliseconds: 121_000, counter: 4, node: "delayed"))
        #expect(listener.current().milliseconds == 125_000)
        clock.advance(by: .milliseconds(100))
        let later = listener.next()
        #expect(later > written, "\(later) must order after \(written)")
    }

    /// The lead runs out: at half rate, a 20 s lead is gone after 40 s, and the wall clock
    /// drives versions again.
    @Test func aLeadOverTheWallClockRunsOutInTwiceItsLength() {
        let clock = ManualClock(wallMilliseconds: 100_000)
        let hlc = HybridLogicalClock(node: "n", clock: clock)
        hlc.observe(CacheVersion(milliseconds: 120_000, counter: 0, node: "ahead"))
        clock.advance(by: .seconds(30))
        #expect(hlc.next().milliseconds == 135_000)
        clock.advance(by: .seconds(11))
        let caughtUp = hlc.next()
        #expect(caughtUp.milliseconds == 141_000 && caughtUp.counter == 0)
    }

    /// A node whose wall clock steps back under its versions (its own clock ran ahead, then was
    /// corrected) keeps growing from where it was, at half rate, instead of only by counters.
    @Test func aWallClockSteppingBackPacesFromWhereTheClockWas() {
        let clock = ManualClock(wallMilliseconds: 100_000)
        let hlc = HybridLogicalClock(node: "n", clock: clock)
        clock.skewWallClock(by: 20_000)
        let ahead = hlc.next()
        clock.skewWallClock(by: -20_000)
        let first = hlc.next()
        clock.advance(by: .milliseconds(200))
        let second = hlc.next()
        #expect(first > ahead && first.milliseconds == 120_000)
        #expect(second.milliseconds == 120_100 && second.counter == 0)
    }

    @Test func theClockNeverGoesBackwardsWhenTheWallClockDoes() {
        let clock = ManualClock(wallMilliseconds: 10_000)
        let hlc = HybridLogicalClock(node: "n", clock: clock)
        let before = hlc.next()
        clock.skewWallClock(by: -5_000)
        let after = hlc.next()
        #expect(after > before)
    }

    @Test func envelopesRoundTrip() throws {
        let entry = DistributedEntry(
            version: CacheVersion(milliseconds: 123, counter: 4, node: "n1"),
            logicalExpiryMilliseconds: 999,
            tags: ["a", "", "ünïcode"],
            payload: Array(0...255)
        )
        #expect(try DistributedEntry.decode(entry.encoded()) == entry)
    }

    @Test func everyTruncationOfAnEnvelopeOrMessageIsATypedError() throws {
        let entry = DistributedEntry(version: CacheVersion(milliseconds: 1, counter: 2, node: "n"), logicalExpiryMilliseconds: 3, tags: ["t"], payload: [1, 2, 3])
        let envelope = entry.encoded()
        for length in 0..<envelope.count {
            #expect(throws: CacheError.self) { try DistributedEntry.decode(Array(envelope.prefix(length))) }
        }
        let message = BackplaneMessage(epoch: "e1", sequence: 9, kind: .set, key: "k", version: entry.version)
        let bytes = message.encoded()
        #expect(try BackplaneMessage.decode(bytes) == message)
        for length in 0..<bytes.count {
            #expect(throws: CacheError.self) { try BackplaneMessage.decode(Array(bytes.prefix(length))) }
        }
        #expect(throws: CacheError.self) { try BackplaneMessage.decode(bytes + [0]) }
    }

    @Test func randomBytesNeverCrashTheDecoders() {
        var generator = SystemRandomNumberGenerator()
        let valid = BackplaneMessage(epoch: "e", sequence: 1, kind: .remove, key: "k", version: CacheVersion(milliseconds: 1, counter: 0, node: "n")).encoded()
        for round in 0..<5_000 {
            var bytes: [UInt8]
            if round % 2 == 0 {
                bytes = (0..<Int.random(in: 0...64, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            } else {
                // Flip bytes of a valid message: the decoder either accepts a well-formed
                // message or throws; it never traps.
                bytes = valid
                for _ in 0..<3 { bytes[Int.random(in: 0..<bytes.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator) }
            }
            _ = try? BackplaneMessage.decode(bytes)
            _ = try? DistributedEntry.decode(bytes)
        }
    }

    @Test func markersApplyOnlyToOlderEntries() {
        let entry = DistributedEntry(version: CacheVersion(milliseconds: 10, counter: 0, node: "a"), logicalExpiryMilliseconds: 0, tags: ["t"], payload: [])
        let older = CacheVersion(milliseconds: 9, counter: 0, node: "a")
        let newer = CacheVersion(milliseconds: 11, counter: 0, node: "a")
        typealias Markers = DistributedStateRules.Markers
        #expect(DistributedStateRules.evaluate(entry, markers: Markers())?.isExpired == false)
        #expect(DistributedStateRules.evaluate(entry, markers: Markers(expire: older))?.isExpired == false)
        #expect(DistributedStateRules.evaluate(entry, markers: Markers(expire: newer))?.isExpired == true)
        #expect(DistributedStateRules.evaluate(entry, markers: Markers(clearExpire: newer))?.isExpired == true)
        #expect(DistributedStateRules.evaluate(entry, markers: Markers(clearRemove: newer)) == nil)
        #expect(DistributedStateRules.evaluate(entry, markers: Markers(clearRemove: older)) != nil)
        #expect(DistributedStateRules.evaluate(entry, markers: Markers(tagRemovals: [newer])) == nil)
        #expect(DistributedStateRules.evaluate(entry, markers: Markers(isFromAnotherEpoch: true))?.isExpired == true)
        #expect(DistributedStateRules.evaluate(entry, markers: Markers(tagRemovals: [older])) != nil)
    }

    @Test func backoffIsCappedExponentialWithFullJitter() {
        var backoff = RetryBackoff(base: .milliseconds(100), cap: .seconds(2))
        var generator = SystemRandomNumberGenerator()
        let ceilings: [Duration] = [.milliseconds(100), .milliseconds(200), .milliseconds(400), .milliseconds(800), .milliseconds(1600), .seconds(2), .seconds(2)]
        for ceiling in ceilings {
            #expect(backoff.currentCeiling == ceiling)
            let delay = backoff.nextDelay(using: &generator)
            #expect(delay >= .zero && delay <= ceiling)
        }
        backoff.reset()
        #expect(backoff.currentCeiling == .milliseconds(100))
    }
}
