import Concord
import ConcordRedis
import ConcordProcess
import Logging
import Synchronization

/// The `recovery` suite: after redis-server is killed and restarted (empty), how long from the
/// moment it accepts connections again until (1) the first distributed operation succeeds,
/// (2) a node applies the invalidation it missed while Redis was down, and (3) the write that
/// was queued during the outage is flushed. Each is compared with the reconnect backoff step in
/// force when the server came back: the connection's jittered delay is at most that step, and
/// nothing can happen before the delay ends, so a prompt recovery takes at most the step plus
/// the handshake.
///
/// Two nodes, A and B, with Concord's default reconnect and retry backoffs. B holds a key in L1;
/// during the outage A writes it (the write is queued). B must stop serving its old value once
/// Redis is back: through A's flushed message, or through the epoch change (the restarted
/// server lost its data), whichever comes first.
struct RecoverySuite: Sendable {
    /// What to measure.
    struct Configuration: Sendable {
        var rounds = 5
        /// How long Redis stays down: long enough for the backoff to grow over several steps.
        var outage: Duration = .milliseconds(1500)
        /// How long each round may take to recover before it is reported as not recovered.
        var recoveryTimeout: Duration = .seconds(15)
        /// The allowance over the backoff delay.
        var allowance: Duration = .milliseconds(50)
        /// Reconnect backoff of every connection (the default of `RedisConfiguration`).
        var reconnect = RedisConfiguration.Reconnect()

        init() {}

        static var quick: Configuration {
            var configuration = Configuration()
            configuration.rounds = 1
            configuration.outage = .milliseconds(400)
            return configuration
        }
    }

    var configuration: Configuration
    var logger: Logger

    init(configuration: Configuration = .init(), logger: Logger = BenchLogging.quietLogger(label: "concord.bench.recovery")) {
        self.configuration = configuration
        self.logger = logger
    }

    /// Timestamps (bench clock ns) of what the suite waits for, written by watcher tasks.
    private struct Marks {
        var probeSucceeded: UInt64?
        var invalidated: UInt64?
        var invalidatedBy: String?
        var flushed: UInt64?
        var armed = false
        var key = ""
    }

    /// The marks, shared by the watcher tasks and the round.
    private final class MarkBox: Sendable {
        let state = Mutex(Marks())
    }

    /// One round's figures, in nanoseconds from the server accepting again.
    struct Round {
        var firstOperation: Double?
        var invalidation: Double?
        var invalidatedBy: String?
        var flush: Double?
        /// The backoff step (the upper bound of the jittered delay) in force on A's command
        /// connection, and on B's slower of command and subscriber connections.
        var commandStep: Step
        var invalidationStep: Step
    }

    /// A backoff step in force when Redis came back, in nanoseconds.
    struct Step {
        /// The upper bound of the delay at that step: min(cap, base · 2^attempt).
        var bound: Double
        /// The delay actually drawn (full jitter), as far as the state stream shows it.
        var drawn: Double
        /// What was left of that delay when Redis accepted again: the part no client could avoid.
        var remaining: Double
    }

    func run() async throws -> [BenchResult] {
        try await BenchServices.withServer { server in
            let configure: (inout RedisConfiguration) -> Void = { [reconnect = configuration.reconnect] redis in
                redis.reconnect = reconnect
            }
            let a = try BenchNode(id: "recovery-a", cacheName: "bench-recovery", server: server, logger: logger, configureRedis: configure)
            let b = try BenchNode(id: "recovery-b", cacheName: "bench-recovery", server: server, logger: logger, configureRedis: configure)
            let logs = [
                "A command": ConnectionStateLog(name: "A command"),
                "B command": ConnectionStateLog(name: "B command"),
                "B subscriber": ConnectionStateLog(name: "B subscriber"),
            ]
            let marks = MarkBox()
            let aEvents = a.cache.events()
            let bEvents = b.cache.events()
            let aID = a.cache.nodeID
            let aStates = a.backend.client.states
            let bStates = b.backend.client.states
            let bSubscriberStates = b.backend.subscriber.states
            let services: [@Sendable () async throws -> Void] = [
                { try await a.cache.run() },
                { try await b.cache.run() },
                { await logs["A command"]!.record(aStates) },
                { await logs["B command"]!.record(bStates) },
                { await logs["B subscriber"]!.record(bSubscriberStates) },
                {
                    for await event in aEvents {
                        if case .pendingWritesFlushed = event {
                            let now = BenchClock.nanoseconds()
                            marks.state.withLock { if $0.armed, $0.flushed == nil { $0.flushed = now } }
                        }
                    }
                },
                {
                    for await event in bEvents {
                        let now = BenchClock.nanoseconds()
                        switch event {
                        case .messageApplied(_, let key, aID):
                            marks.state.withLock { if $0.armed, $0.invalidated == nil, key == $0.key { $0.invalidated = now; $0.invalidatedBy = "A's flushed write" } }
                        case .fullExpiry:
                            marks.state.withLock { if $0.armed, $0.invalidated == nil { $0.invalidated = now; $0.invalidatedBy = "epoch change" } }
                        default:
                            break
                        }
                    }
                },
            ]
            return try await BenchServices.withRunning(services) {
                var rounds: [Round] = []
                for round in 0..<configuration.rounds {
                    rounds.append(try await measureRound(round, server: server, a: a, b: b, logs: logs, marks: marks))
                }
                return summarize(rounds)
            }
        }
    }

    private func waitForBoth(_ a: BenchNode, _ b: BenchNode) async throws {
        guard try await BenchServices.waitUntil(timeout: configuration.recoveryTimeout, {
            a.cache.isBackplaneConnected && b.cache.isBackplaneConnected && a.cache.pendingWriteCount == 0
        }) else {
            throw BenchError("the recovery nodes did not (re)connect within \(configuration.recoveryTimeout)")
        }
    }

    private func measureRound(
        _ round: Int,
        server: RedisServer,
        a: BenchNode,
        b: BenchNode,
        logs: [String: ConnectionStateLog],
        marks: MarkBox
    ) async throws -> Round {
        try await waitForBoth(a, b)
        let key = "recovery-\(round)"
        try await a.cache.set(key, "before")
        guard try await b.cache.getResult(key, as: String.self)?.value == "before",
              try await b.cache.getResult(key, as: String.self)?.source == .memory
        else {
            throw BenchError("node B could not load '\(key)' into L1 before the outage")
        }

        server.kill()
        marks.state.withLock { $0 = Marks(armed: true, key: key) }
        let killedAt = BenchClock.nanoseconds()
        // A writes while Redis is down: the write applies to A's L1 and is queued.
        try await a.cache.set(key, "during")
        guard a.cache.pendingWriteCount > 0 else {
            throw BenchError("a write made while Redis was down was not queued")
        }
        let remaining = BenchClock.nanoseconds(configuration.outage) &- min(BenchClock.nanoseconds(configuration.outage), BenchClock.nanoseconds() &- killedAt)
        try await Task.sleep(for: .nanoseconds(Int64(remaining)))

        // The probe: a distributed operation through A's own L2, tried every millisecond.
        let deadline = BenchClock.nanoseconds() &+ BenchClock.nanoseconds(configuration.recoveryTimeout)
        let watcher = AcceptWatcher(port: server.port, timeout: configuration.recoveryTimeout)
        defer { watcher.stop() }
        let restartedAt: UInt64 = try await withThrowingTaskGroup(of: UInt64.self) { group in
            group.addTask {
                while BenchClock.nanoseconds() < deadline {
                    do {
                        // A read of a missing key: it succeeds (answering nil) once L2 is reachable.
                        _ = try await a.backend.distributed.read("probe")
                        let now = BenchClock.nanoseconds()
                        marks.state.withLock { if $0.probeSucceeded == nil { $0.probeSucceeded = now } }
                        return now
                    } catch {
                        try await Task.sleep(for: .milliseconds(1))
                    }
                }
                return 0
            }
            try await server.restart()
            let restartedAt = BenchClock.nanoseconds()
            _ = try await group.next()
            group.cancelAll()
            return restartedAt
        }
        _ = try await BenchServices.waitUntil(timeout: configuration.recoveryTimeout) {
            marks.state.withLock { $0.invalidated != nil && $0.flushed != nil } || BenchClock.nanoseconds() >= deadline
        }
        let snapshot = marks.state.withLock { state -> Marks in
            state.armed = false
            return state
        }
        // The watcher's connect is the earliest sign of life; restart() returning is the latest.
        let acceptedAt = watcher.acceptedAt ?? restartedAt

        func since(_ mark: UInt64?) -> Double? {
            mark.map { Double($0 > acceptedAt ? $0 - acceptedAt : 0) }
        }
        func step(_ names: [String]) -> Step {
            var step = Step(bound: 0, drawn: 0, remaining: 0)
            for name in names {
                guard let backoff = logs[name]?.backoff(inForceAt: acceptedAt) else { continue }
                step.drawn = max(step.drawn, Double(backoff.delay))
                step.remaining = max(step.remaining, Double(backoff.end > acceptedAt ? backoff.end - acceptedAt : 0))
                step.bound = max(step.bound, Double(BenchClock.nanoseconds(Self.upperBound(configuration.reconnect, attempt: backoff.attempt))))
            }
            return step
        }
        let commandStep = step(["A command"])
        let invalidationStep = step(["B command", "B subscriber"])

        // B must not serve the old value any more.
        if let stale = try? await b.cache.getResult(key, as: String.self), stale.value == "before", !stale.isStale {
            throw BenchError("node B still serves the value from before the outage")
        }
        return Round(
            firstOperation: since(snapshot.probeSucceeded),
            invalidation: since(snapshot.invalidated),
            invalidatedBy: snapshot.invalidatedBy,
            flush: since(snapshot.flushed),
            commandStep: commandStep,
            invalidationStep: invalidationStep
        )
    }

    /// The largest delay of the reconnect backoff after `attempt` consecutive failures.
    static func upperBound(_ reconnect: RedisConfiguration.Reconnect, attempt: Int) -> Duration {
        var bound = reconnect.backoffBase
        for _ in 0..<min(attempt, 40) where bound < reconnect.backoffCap { bound = bound * 2 }
        return min(bound, reconnect.backoffCap)
    }

    private func summarize(_ rounds: [Round]) -> [BenchResult] {
        let allowance = Double(BenchClock.nanoseconds(configuration.allowance)) / 1e6
        func row(_ name: String, _ value: KeyPath<Round, Double?>, _ step: KeyPath<Round, Step>, note: String) -> BenchResult {
            let measured = rounds.compactMap { $0[keyPath: value] }.map { $0 / 1e6 }
            let missing = rounds.count - measured.count
            let summary = BenchResult.Summary(measured.isEmpty ? [.infinity] : measured)
            let bounds = BenchResult.Summary(rounds.map { $0[keyPath: step].bound / 1e6 })
            let drawn = BenchResult.Summary(rounds.map { $0[keyPath: step].drawn / 1e6 })
            let remaining = BenchResult.Summary(rounds.map { $0[keyPath: step].remaining / 1e6 })
            // Met only when every round recovered within its own step plus the allowance.
            let everyRound = missing == 0 && rounds.allSatisfy { round in
                guard let measured = round[keyPath: value] else { return false }
                return measured / 1e6 <= round[keyPath: step].bound / 1e6 + allowance
            }
            let worst = rounds.compactMap { round in round[keyPath: value].map { ($0 - round[keyPath: step].remaining) / 1e6 } }.max()
            var text = note + "; jittered delay drawn \(BenchFormat.adaptive(drawn.median)) ms, of which \(BenchFormat.adaptive(remaining.median)) ms still to wait when Redis came back"
            if let worst { text += "; worst round took \(BenchFormat.adaptive(worst)) ms beyond that wait" }
            if missing > 0 { text += "; \(missing) round\(missing == 1 ? "" : "s") never recovered within \(configuration.recoveryTimeout)" }
            return BenchResult(
                suite: "recovery", name: name, value: summary, unit: "ms", reference: bounds,
                ratio: bounds.median > 0 ? summary.median / bounds.median : nil,
                target: "<= step + \(BenchFormat.adaptive(allowance)) ms, every round",
                met: everyRound, note: text)
        }
        let causes = Dictionary(grouping: rounds.compactMap(\.invalidatedBy), by: { $0 }).map { "\($0.value.count)× \($0.key)" }.sorted()
        return [
            row("first distributed op after restart", \.firstOperation, \.commandStep,
                note: "reference: the reconnect backoff step of A's command connection when Redis came back"),
            row("missed invalidation applied on B", \.invalidation, \.invalidationStep,
                note: "reference: the larger step of B's command and subscriber connections; applied by " + (causes.isEmpty ? "-" : causes.joined(separator: ", "))),
            row("write queued in outage flushed", \.flush, \.commandStep,
                note: "reference: the reconnect step of A's command connection"),
        ]
    }
}
