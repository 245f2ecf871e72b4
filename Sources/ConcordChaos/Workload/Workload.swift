import ConcordNode
import Synchronization

/// The chaos run's traffic: writers that raise a key's version in the origin and then write it
/// through a random node (PUT of the new value, or DELETE so the next read reloads it), and one
/// reader per node. Every request is recorded, on the harness's one clock, for the checker.
///
/// Each key belongs to one writer, so a key's origin versions and its acknowledged writes come
/// in the same order; two writers racing on a key would make the cache's last-writer-wins look
/// like a lost write.
package final class Workload: Sendable {
    /// Rates and shapes of the traffic; the defaults suit five nodes on two cores.
    package struct Configuration: Sendable, Hashable {
        /// Keys `k00`, `k01`, ...: few enough that every key is written and read often.
        package var keyCount: Int = 30
        package var writers: Int = 2
        /// Pause between one writer's writes (jittered by ±50%).
        package var writeInterval: Duration = .milliseconds(60)
        /// Pause between one reader's reads (jittered by ±50%).
        package var readInterval: Duration = .milliseconds(20)
        /// Share of writes made as DELETE rather than PUT.
        package var deleteShare: Double = 0.3
        /// After a failed write, its key is left alone this long: the request may still be
        /// running inside the node, and a newer write racing it would be blamed on the cache.
        package var quarantine: Duration = .seconds(5)

        package init() {}
    }

    /// One node as the workload sees it.
    package struct Target: Sendable {
        package var id: String
        package var client: NodeClient

        package init(id: String, client: NodeClient) {
            self.id = id
            self.client = client
        }
    }

    package let configuration: Configuration
    package let targets: [Target]
    package let keys: [String]
    package let recorder: HistoryRecorder
    private let origin: OriginStore
    private let seed: UInt64
    private let stopped = Atomic<Bool>(false)
    /// The highest version acknowledged per key, for convergence probes.
    private let acked = Mutex<[String: Int64]>([:])
    /// 200 answers whose body was not a `v<version>` value: corruption, reported as a finding.
    private let corrupt = Mutex<[String]>([])

    package init(configuration: Configuration, targets: [Target], origin: OriginStore, recorder: HistoryRecorder, seed: UInt64) {
        self.configuration = configuration
        self.targets = targets
        self.keys = Self.keys(count: configuration.keyCount)
        self.origin = origin
        self.recorder = recorder
        self.seed = seed
    }

    /// `k00`, `k01`, ... zero-padded so they sort in order in reports.
    package static func keys(count: Int) -> [String] {
        let width = String(max(count - 1, 0)).count
        return (0..<count).map { index in
            let digits = String(index)
            return "k" + String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
    }

    // MARK: Running

    /// Runs the writers and readers until `stop()` or cancellation.
    package func run() async {
        await withDiscardingTaskGroup { group in
            for writer in 0..<max(1, configuration.writers) {
                group.addTask { await self.runWriter(writer) }
            }
            for index in targets.indices {
                group.addTask { await self.runReader(index) }
            }
        }
    }

    /// Asks every task to finish after its current request.
    package func stop() {
        stopped.store(true, ordering: .relaxed)
    }

    private var isStopped: Bool { stopped.load(ordering: .relaxed) || Task.isCancelled }

    private func runWriter(_ writer: Int) async {
        var random = SeededGenerator(seed: seed, stream: 100 + UInt64(writer))
        let count = max(1, configuration.writers)
        let owned = keys.indices.filter { $0 % count == writer }.map { keys[$0] }
        guard !owned.isEmpty, !targets.isEmpty else { return }
        var quarantinedUntil: [String: Duration] = [:]
        while !isStopped {
            let now = recorder.now()
            let available = owned.filter { (quarantinedUntil[$0] ?? .zero) <= now }
            if let key = available.randomElement(using: &random) {
                let target = Int.random(in: 0..<targets.count, using: &random)
                let kind: Operation.Kind = Double.random(in: 0..<1, using: &random) < configuration.deleteShare ? .delete : .write
                let operation = await mutate(target: target, key: key, kind: kind)
                if !operation.outcome.isOK {
                    quarantinedUntil[key] = recorder.now() + configuration.quarantine
                }
            }
            await pause(configuration.writeInterval, &random)
        }
    }

    private func runReader(_ index: Int) async {
        var random = SeededGenerator(seed: seed, stream: 200 + UInt64(index))
        guard !keys.isEmpty else { return }
        while !isStopped {
            let key = keys[Int.random(in: 0..<keys.count, using: &random)]
            await read(target: index, key: key)
            await pause(configuration.readInterval, &random)
        }
    }

    private func pause(_ interval: Duration, _ random: inout SeededGenerator) async {
        let jittered = random.duration(in: interval * 0.5 ... interval * 1.5)
        try? await Task.sleep(for: jittered)
    }

    // MARK: Operations

    /// Reads `key` through the node and records what came back: the version the body encodes,
    /// `Concord-Stale` and `Concord-Source`. A 404 is recorded as "not found" (the checker
    /// then judges it as older than any version); other statuses and transport errors as failures.
    @discardableResult
    package func read(target index: Int, key: String, purpose: Operation.Purpose = .workload) async -> Operation {
        let target = targets[index]
        let pending = recorder.begin(.read, node: target.id, key: key, purpose: purpose)
        let response: NodeResponse
        do {
            response = try await target.client.get(key)
        } catch {
            return recorder.complete(pending, .failed(Self.describe(error)))
        }
        let source = response.source.flatMap { Operation.Source(rawValue: $0.lowercased()) }
        switch response.status {
        case 200:
            guard let version = OriginStore.version(of: response.body) else {
                let body = String(decoding: response.body.prefix(40), as: UTF8.self)
                corrupt.withLock { $0.append("\(target.id)/\(key): body '\(body)'") }
                return recorder.complete(pending, .failed("body is not a version: '\(body)'"), stale: response.isStale, source: source)
            }
            return recorder.complete(pending, .ok(version: version), stale: response.isStale, source: source)
        case 404:
            return recorder.complete(pending, .ok(version: nil), stale: response.isStale, source: source)
        default:
            return recorder.complete(pending, .failed("HTTP \(response.status): \(String(decoding: response.body.prefix(120), as: UTF8.self))"))
        }
    }

    /// Raises the key's version in the origin, then writes it through the node: PUT of the new
    /// value, or DELETE. The operation starts before the origin write and is acknowledged when
    /// the node answers 2xx; its version is the one the origin now holds.
    @discardableResult
    package func mutate(target index: Int, key: String, kind: Operation.Kind) async -> Operation {
        precondition(kind == .write || kind == .delete, "the workload writes with PUT or DELETE")
        let target = targets[index]
        let pending = recorder.begin(kind, node: target.id, key: key)
        let version: Int64
        do {
            version = try await origin.bump(key)
        } catch {
            return recorder.complete(pending, .failed("origin: \(error)"))
        }
        let response: NodeResponse
        do {
            response = kind == .write
                ? try await target.client.set(key, value: OriginStore.value(version: version))
                : try await target.client.delete(key)
        } catch {
            return recorder.complete(pending, .failed(Self.describe(error)))
        }
        guard response.isSuccess else {
            return recorder.complete(pending, .failed("HTTP \(response.status): \(String(decoding: response.body.prefix(120), as: UTF8.self))"))
        }
        let operation = recorder.complete(pending, .ok(version: version))
        acked.withLock { $0[key] = max($0[key] ?? 0, version) }
        return operation
    }

    /// The highest version acknowledged for `key` so far (0 if none: the seeded version 1 is
    /// not an acknowledged write).
    package func latestAcked(_ key: String) -> Int64 {
        acked.withLock { $0[key] ?? 0 }
    }

    /// Every 200 answer whose body was not a version, as "node/key: body".
    package var corruptReads: [String] { corrupt.withLock { $0 } }

    static func describe(_ error: any Error) -> String {
        if let error = error as? NodeClientError { return "\(error.code): \(error.message)" }
        if let error = error as? ChaosError { return "\(error.code): \(error.message)" }
        return "\(error)"
    }
}
