import Concord
import Testing

@testable import ConcordRedis

/// Always returns the same word: 1 gives the smallest delay, UInt64.max the largest. (Not 0: the
/// stdlib rejects a zero draw for most ranges and would ask again forever.)
struct ConstantRandom: RandomNumberGenerator {
    let value: UInt64
    mutating func next() -> UInt64 { value }
}

/// SplitMix64, for reproducible "random" draws.
struct SeededRandom: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite("Backoff and reconnect supervisor")
struct ReconnectSupervisorTests {
    let backoff = RetryBackoff(base: .milliseconds(100), cap: .seconds(2))
    let error = RedisError(.connectionRefused, "refused")

    @Test func upperBoundDoublesUntilCap() {
        let bounds = (0..<8).map { backoff.upperBound(attempt: $0) }
        #expect(
            bounds == [
                .milliseconds(100), .milliseconds(200), .milliseconds(400), .milliseconds(800), .milliseconds(1600), .seconds(2),
                .seconds(2), .seconds(2),
            ])
        #expect(backoff.upperBound(attempt: 10_000) == .seconds(2))
        #expect(RetryBackoff(base: .seconds(1), cap: .seconds(Int64.max / 2)).upperBound(attempt: 200) > .zero)
    }

    @Test func fullJitterStaysWithinBounds() {
        var random = SeededRandom(state: 42)
        for attempt in 0..<12 {
            let upper = backoff.upperBound(attempt: attempt)
            var largest = Duration.zero
            for _ in 0..<500 {
                let delay = backoff.delay(attempt: attempt, using: &random)
                #expect(delay >= .zero && delay <= upper)
                largest = max(largest, delay)
            }
            // Full jitter uses the whole range, not just its top.
            #expect(largest > upper / 2)
        }
    }

    @Test func extremesOfTheRandomSource() {
        var low = ConstantRandom(value: 1)
        var high = ConstantRandom(value: .max)
        #expect(backoff.delay(attempt: 3, using: &low) == .zero)
        let top = backoff.delay(attempt: 3, using: &high)
        #expect(top <= .milliseconds(800) && top >= .milliseconds(799))
    }

    @Test func supervisorBacksOffThenResetsOnSuccess() throws {
        var supervisor = ReconnectSupervisor(backoff: backoff, random: ConstantRandom(value: .max))
        let now = ContinuousClock.now
        var delays: [Duration] = []
        for _ in 0..<7 {
            let connecting = supervisor.startConnecting()
            #expect(connecting?.isConnected == false)
            let outcome = supervisor.failed(error, now: now)
            let (publish, delay) = try #require(outcome)
            #expect(publish.count == 2)
            guard case .disconnected(let published) = publish[0], case .backingOff(let until) = publish[1] else {
                Issue.record("unexpected states \(publish)")
                return
            }
            #expect(published.code == .connectionRefused)
            #expect(until == now.advanced(by: delay))
            delays.append(delay)
        }
        let rounded = delays.map { Int(($0 / .milliseconds(1)).rounded()) }
        #expect(rounded == [100, 200, 400, 800, 1600, 2000, 2000])
        #expect(supervisor.consecutiveFailures == 7)
        #expect(supervisor.lastError?.code == .connectionRefused)
        #expect(supervisor.attempts == 7)

        _ = supervisor.startConnecting()
        let connected = supervisor.connected()
        #expect(connected?.isConnected == true)
        #expect(supervisor.isConnected)
        #expect(supervisor.consecutiveFailures == 0)
        #expect(supervisor.lastError == nil)

        // A lost connection starts again from the base.
        let outcome = supervisor.failed(error, now: now)
        let (_, delay) = try #require(outcome)
        #expect(Int((delay / .milliseconds(1)).rounded()) == 100)
    }

    @Test func shutdownStopsTheMachine() {
        var supervisor = ReconnectSupervisor(backoff: backoff, random: ConstantRandom(value: 1))
        _ = supervisor.startConnecting()
        let first = supervisor.shutdown()
        let second = supervisor.shutdown()
        #expect(first)
        #expect(!second)
        let restarted = supervisor.startConnecting()
        #expect(restarted == nil)
        let outcome = supervisor.failed(error, now: .now)
        #expect(outcome == nil)
        let connected = supervisor.connected()
        #expect(connected == nil)
    }

    @Test func zeroBaseNeverWaits() {
        var random = SeededRandom(state: 1)
        let none = RetryBackoff(base: .zero, cap: .seconds(1))
        #expect(none.delay(attempt: 5, using: &random) == .zero)
    }
}
