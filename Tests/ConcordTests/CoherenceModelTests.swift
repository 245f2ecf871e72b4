@_spi(ConcordBackend) import Concord
import ConcordTesting
import Synchronization
import Testing

/// The receiving side of the protocol against a reference model: random interleavings of
/// messages, duplicates, gaps, reconnects, epoch changes, rollbacks, trimmed logs and forged
/// messages, driven through a scripted backplane. After every round the node is synchronized
/// (a heartbeat) and checked: no key written in the current history may still be served as
/// fresh at a version older than that write.
@Suite("Coherence receiver against a reference model")
struct CoherenceModelTests {
    /// The authoritative Redis side: epoch, log (sequence → message) and a writer's versions.
    final class History: Sendable {
        struct State {
            var epoch = "e0"
            var epochs = 0
            var log: [(sequence: UInt64, bytes: [UInt8], key: String, version: CacheVersion)] = []
            var sequence: UInt64 = 0
            var firstLogged: UInt64 = 1
        }

        let state = Mutex(State())
        let authenticator: (any MessageAuthenticator)?

        init(authenticator: (any MessageAuthenticator)?) {
            self.authenticator = authenticator
        }

        func write(key: String, version: CacheVersion, writeID: UInt64) -> [UInt8] {
            state.withLock { state in
                state.sequence += 1
                let bytes = BackplaneMessage(epoch: state.epoch, sequence: state.sequence, kind: .set, key: key, version: version, writeID: writeID)
                    .encoded(authenticator: authenticator)
                state.log.append((state.sequence, bytes, key, version))
                return bytes
            }
        }

        /// Redis lost its data: a new epoch, an empty log.
        func changeEpoch() {
            state.withLock { state in
                state.epochs += 1
                state.epoch = "e\(state.epochs)"
                state.log = []
                state.sequence = 0
                state.firstLogged = 1
            }
        }

        /// History goes back to `sequence` under the same epoch (a restore, a lagging replica).
        func rollBack(to sequence: UInt64) {
            state.withLock { state in
                guard sequence < state.sequence else { return }
                state.log.removeAll { $0.sequence > sequence }
                state.sequence = sequence
                state.firstLogged = min(state.firstLogged, sequence + 1)
            }
        }

        func trim(keepingLast count: Int) {
            state.withLock { state in
                if state.log.count > count { state.log.removeFirst(state.log.count - count) }
                state.firstLogged = state.log.first?.sequence ?? state.sequence + 1
            }
        }

        var head: BackplaneHead { state.withLock { BackplaneHead(epoch: $0.epoch, sequence: $0.sequence) } }

        func read(from: UInt64, through: UInt64) -> BackplaneLogRead {
            state.withLock { state in
                guard from <= through else { return .messages([]) }
                if from < state.firstLogged { return .trimmed }
                return .messages(state.log.filter { $0.sequence >= from && $0.sequence <= through }.map(\.bytes))
            }
        }

        /// The newest version written to each key in the current history.
        var newestVersions: [String: CacheVersion] {
            state.withLock { state in
                var newest: [String: CacheVersion] = [:]
                for entry in state.log where newest[entry.key].map({ $0 < entry.version }) ?? true {
                    newest[entry.key] = entry.version
                }
                return newest
            }
        }
    }

    /// A backplane whose events the test delivers by hand, over the `History`.
    final class ScriptedBackplane: Backplane {
        let history: History
        let sink = Mutex<BackplaneEventSink?>(nil)

        init(history: History) { self.history = history }

        func publish(_ mutation: CacheMutation) async throws -> UInt64 {
            throw CacheError(.distributedFailed, "the scripted backplane takes no writes")
        }

        func head() async throws -> BackplaneHead { history.head }

        func readLog(from: UInt64, through: UInt64) async throws -> BackplaneLogRead {
            history.read(from: from, through: through)
        }

        func run(events: BackplaneEventSink) async throws {
            sink.withLock { $0 = events }
            events(.subscribed)
            while !Task.isCancelled {
                try await Task.sleep(for: .seconds(3600))
            }
        }

        func deliver(_ event: BackplaneEvent) {
            sink.withLock { $0 }?(event)
        }

        var messageAuthenticator: (any MessageAuthenticator)? { history.authenticator }
    }

    static let keys = (0..<12).map { "k\($0)" }

    /// Seeds below 40 run with a backplane key, and forged messages (unsigned, or signed with
    /// another key) among the inputs. Seeds from 40 run without a key and without forgeries:
    /// without a key, a forgery that takes the number of a real message lost in transit cannot
    /// be told from it (the key is what makes forged messages harmless).
    @Test(arguments: 0..<60)
    func theNodeNeverServesAKeyOlderThanItsNewestWriteInTheCurrentHistory(seed: UInt64) async throws {
        let clock = ManualClock()
        let withKey = seed < 40
        let history = History(authenticator: withKey ? TestAuthenticator(secret: 1) : nil)
        let backplane = ScriptedBackplane(history: history)
        let cache = try makeCache(node: "n1", clock: clock, backplane: backplane) {
            $0.maxReplayLength = 50
        }
        var local = CacheEntryOptions(duration: .seconds(3600))
        local.skipBackplaneNotifications = true
        let options = local
        try await withRunning([cache], clock: clock, sleepersPerCache: 2) {
            #expect(await eventually(pollingEvery: .zero) { cache.isBackplaneConnected })
            var random = ModelRandom(seed: seed)
            var delayed: [[UInt8]] = []
            var writerMillis = clock.wallClockMilliseconds()
            for round in 0..<12 {
                // The node holds fresh copies of some keys, versioned by its own clock.
                for key in Self.keys where random.chance(0.5) {
                    try await cache.set(key, "local-\(round)", options: options)
                }
                for _ in 0..<random.int(in: 3...15) {
                    switch random.int(in: 0...99) {
                    case 0..<45: // a write on another node, delivered, dropped or held back
                        writerMillis += Int64(random.int(in: 0...2))
                        let key = Self.keys[random.int(in: 0..<Self.keys.count)]
                        let version = CacheVersion(milliseconds: writerMillis, counter: UInt32(random.int(in: 0...5)), node: "w")
                        let bytes = history.write(key: key, version: version, writeID: random.next())
                        switch random.int(in: 0...9) {
                        case 0..<6: backplane.deliver(.message(bytes))
                        case 6..<8: delayed.append(bytes)
                        default: break
                        }
                    case 45..<55: // held-back messages arrive, late and possibly twice
                        for bytes in delayed.shuffled(using: &random) { backplane.deliver(.message(bytes)) }
                        if random.chance(0.5) { delayed = [] }
                    case 55..<63:
                        backplane.deliver(.disconnected(reason: "model"))
                        backplane.deliver(.subscribed)
                    case 63..<68:
                        history.changeEpoch()
                        delayed = []
                    case 68..<78:
                        let head = history.head.sequence
                        history.rollBack(to: UInt64(random.int(in: 0...Int(head))))
                    case 78..<84:
                        // MAXLEN trimming never removes the entry just appended.
                        history.trim(keepingLast: random.int(in: 1...5))
                    case 84..<92 where withKey: // a forged message with the next sequence number
                        let head = history.head
                        let key = Self.keys[random.int(in: 0..<Self.keys.count)]
                        let forged = BackplaneMessage(
                            epoch: head.epoch, sequence: head.sequence + 1, kind: .set, key: key,
                            version: CacheVersion(milliseconds: writerMillis, counter: 9, node: "forger"), writeID: random.next()
                        )
                        backplane.deliver(.message(forged.encoded(authenticator: random.chance(0.5) ? TestAuthenticator(secret: 2) : nil)))
                    default: // a duplicate of a logged message
                        let bytes = history.state.withLock { $0.log.randomElement(using: &random)?.bytes }
                        if let bytes { backplane.deliver(.message(bytes)) }
                    }
                }
                // Quiesce: a heartbeat brings the node to the head; wait until it is there.
                let head = history.head
                // The heartbeat and the metrics loop both sleep on the clock: wait until both are
                // armed again, so the advance does fire a heartbeat.
                #expect(await clock.waitForSleepers(atLeast: 2))
                clock.advance(by: cache.configuration.heartbeatInterval)
                let synchronized = await eventually(pollingEvery: .zero) {
                    let stats = cache.statistics.backplane
                    return stats.connected && stats.epoch == head.epoch && stats.lastSeq == head.sequence
                }
                #expect(synchronized, "seed \(seed) round \(round): not at the head \(head) after a heartbeat: \(cache.statistics.backplane)")
                for (key, newest) in history.newestVersions {
                    guard let read = try await cache.getResult(key, as: String.self), !read.isStale else { continue }
                    #expect(read.version >= newest, "seed \(seed) round \(round): \(key) served fresh at \(read.version), older than \(newest)")
                }
            }
        }
    }
}

/// A small seeded generator (SplitMix64), so every model run can be replayed from its seed.
struct ModelRandom: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed &+ 0x9E37_79B9_7F4A_7C15 }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func int(in range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &self) }
    mutating func int(in range: Range<Int>) -> Int { Int.random(in: range, using: &self) }
    mutating func chance(_ probability: Double) -> Bool { Double.random(in: 0..<1, using: &self) < probability }
}
