import ConcordNode
import Synchronization

/// The chaos run's traffic, over the node's whole API: writers that raise keys' versions in the
/// origin and then tell the cluster through a random node (PUT of the new value, in the
/// foreground or `?background=true`; DELETE; POST /v1/invalidate of several keys; DELETE
/// /v1/tags/{tag} of a key group; now and then POST /v1/clear), and one reader per node.
/// Keys are drawn with Zipf popularity; values range from a few bytes to near the node's
/// value limit. Every request is recorded, on the harness's one clock, for the checker.
///
/// Each key belongs to one writer, so a key's origin versions and its acknowledged writes come
/// in the same order; two writers racing on a key would make the cache's last-writer-wins look
/// like a lost write. A clear, which raises every key, runs alone (`MutationGate`).
package final class Workload: Sendable {
    /// Rates and shapes of the traffic; the defaults suit five nodes on two cores.
    package struct Configuration: Sendable, Hashable {
        /// Keys `k0000`, `k0001`, ..., read and written with Zipf popularity.
        package var keyCount: Int = 2_000
        /// The Zipf exponent: 1 gives a few hot keys and a long tail.
        package var zipfExponent: Double = 1.0
        package var writers: Int = 2
        /// Pause between one writer's mutations (jittered by ±50%).
        package var writeInterval: Duration = .milliseconds(60)
        /// Pause between one reader's reads (jittered by ±50%).
        package var readInterval: Duration = .milliseconds(20)
        /// Share of mutations made as DELETE.
        package var deleteShare: Double = 0.2
        /// Share of mutations made as POST /v1/invalidate of `invalidateKeys` keys.
        package var invalidateShare: Double = 0.1
        package var invalidateKeys: ClosedRange<Int> = 2...5
        /// Share of mutations made as DELETE /v1/tags/{tag} of a whole key group.
        package var tagRemovalShare: Double = 0.03
        /// Keys per tag group: a writer's keys, in order, `tagGroupSize` at a time.
        package var tagGroupSize: Int = 8
        /// Share of the first writer's mutations made as POST /v1/clear.
        package var clearShare: Double = 0.01
        /// Share of PUTs made with `?background=true`.
        package var backgroundShare: Double = 0.2
        /// Value sizes; `maxBytes` should stay below the nodes' `--max-value-bytes`.
        package var values: ValueSizes = ValueSizes(maxBytes: 512 << 10)
        /// After a failed mutation, its keys are left alone this long: the request may still be
        /// running inside the node, and a newer write racing it would be blamed on the cache.
        package var quarantine: Duration = .seconds(5)
        /// Convergence probes after a heal read at most this many keys per node: the keys
        /// mutated most recently, then the hottest.
        package var probeKeys: Int = 48
        /// Pause between probe rounds: dense, so C5's figure is close to the true moment.
        package var probePause: Duration = .milliseconds(10)
        /// A bound on probe rounds after one heal, whatever the time bound allows.
        package var maxProbeRounds: Int = 400
        /// A final read answered stale-flagged is read again, at most this many times, this far
        /// apart: the flag says the node could not confirm the current value in time (the
        /// origin slower than the factory's soft timeout while every node reloads every key),
        /// and a client that needs the current value asks again. C5 and C6 judge the last read.
        package var finalStaleRereads: Int = 3
        package var finalStaleRereadPause: Duration = .milliseconds(200)

        package init() {}

        /// Only PUT (foreground) and DELETE, 30 % deletes: the operations of earlier harnesses.
        package mutating func restrictToPutAndDelete() {
            deleteShare = 0.3
            invalidateShare = 0
            tagRemovalShare = 0
            clearShare = 0
            backgroundShare = 0
        }

        /// Whether invalidations, tag removals, clears or background writes are in the mix.
        package var usesWholeAPI: Bool {
            invalidateShare > 0 || tagRemovalShare > 0 || clearShare > 0 || backgroundShare > 0
        }
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
    private let popularity: ZipfKeys
    private let gate = MutationGate()
    private let stopped = Atomic<Bool>(false)
    /// The highest version acknowledged per key, and when, for convergence probes.
    private let acked = Mutex<[String: (version: Int64, at: Duration)]>([:])
    /// Keys whose last mutation failed, until when they are left alone.
    private let quarantined = Mutex<[String: Duration]>([:])
    /// 200 answers whose body was not a version's value: corruption, reported as a finding.
    private let corrupt = Mutex<[String]>([])

    package init(configuration: Configuration, targets: [Target], origin: OriginStore, recorder: HistoryRecorder, seed: UInt64) {
        self.configuration = configuration
        self.targets = targets
        self.keys = Self.keys(count: configuration.keyCount)
        self.origin = origin
        self.recorder = recorder
        self.seed = seed
        self.popularity = ZipfKeys(count: configuration.keyCount, exponent: configuration.zipfExponent, seed: seed)
    }

    /// `k00`, `k01`, ... zero-padded so they sort in order in reports.
    package static func keys(count: Int) -> [String] {
        let width = String(max(count - 1, 0)).count
        return (0..<count).map { index in
            let digits = String(index)
            return "k" + String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
    }

    /// The tag every copy of key `index` carries: its writer's group of `tagGroupSize` keys.
    package func tag(ofKeyAt index: Int) -> String {
        let writers = max(1, configuration.writers)
        return "w\(index % writers)-g\((index / writers) / max(1, configuration.tagGroupSize))"
    }

    private func keyIndex(_ key: String) -> Int { Int(key.dropFirst()) ?? 0 }

    /// The keys carrying `tag`.
    func keys(tagged tag: String, writer: Int) -> [String] {
        keys.indices.filter { $0 % max(1, configuration.writers) == writer && self.tag(ofKeyAt: $0) == tag }.map { keys[$0] }
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

    private func isQuarantined(_ key: String, now: Duration) -> Bool {
        quarantined.withLock { ($0[key] ?? .zero) > now }
    }

    private func quarantine(_ keys: [String]) {
        let until = recorder.now() + configuration.quarantine
        quarantined.withLock { map in
            for key in keys { map[key] = until }
        }
    }

    /// One of the writer's own keys, by popularity, not quarantined; nil after a few misses.
    private func ownedKey(_ writer: Int, _ random: inout SeededGenerator) -> String? {
        let writers = max(1, configuration.writers)
        let now = recorder.now()
        for _ in 0..<64 {
            let index = popularity.next(&random)
            guard index % writers == writer else { continue }
            if !isQuarantined(keys[index], now: now) { return keys[index] }
        }
        return nil
    }

    private func runWriter(_ writer: Int) async {
        var random = SeededGenerator(seed: seed, stream: 100 + UInt64(writer))
        guard !keys.isEmpty, !targets.isEmpty else { return }
        let configuration = self.configuration
        while !isStopped {
            let target = Int.random(in: 0..<targets.count, using: &random)
            var draw = Double.random(in: 0..<1, using: &random)
            if writer == 0, draw < configuration.clearShare {
                await clear(target: target)
            } else if let key = ownedKey(writer, &random) {
                draw -= writer == 0 ? configuration.clearShare : 0
                if draw < configuration.tagRemovalShare {
                    let tag = self.tag(ofKeyAt: keyIndex(key))
                    let group = keys(tagged: tag, writer: writer)
                    if !group.contains(where: { isQuarantined($0, now: recorder.now()) }) {
                        await removeTag(target: target, tag: tag, keys: group)
                    }
                } else if draw < configuration.tagRemovalShare + configuration.invalidateShare {
                    var chosen = [key]
                    let wanted = Int.random(in: configuration.invalidateKeys, using: &random)
                    for _ in 0..<(wanted * 4) where chosen.count < wanted {
                        if let other = ownedKey(writer, &random), !chosen.contains(other) { chosen.append(other) }
                    }
                    await invalidate(target: target, keys: chosen)
                } else if draw < configuration.tagRemovalShare + configuration.invalidateShare + configuration.deleteShare {
                    await mutate(target: target, key: key, kind: .delete)
                } else {
                    let background = Double.random(in: 0..<1, using: &random) < configuration.backgroundShare
                    await mutate(target: target, key: key, kind: .write, background: background)
                }
            }
            await pause(configuration.writeInterval, &random)
        }
    }

    private func runReader(_ index: Int) async {
        var random = SeededGenerator(seed: seed, stream: 200 + UInt64(index))
        guard !keys.isEmpty else { return }
        while !isStopped {
            let key = keys[popularity.next(&random)]
            await read(target: index, key: key)
            await pause(configuration.readInterval, &random)
        }
    }

    private func pause(_ interval: Duration, _ random: inout SeededGenerator) async {
        let jittered = random.duration(in: interval * 0.5 ... interval * 1.5)
        try? await Task.sleep(for: jittered)
    }

    // MARK: Operations

    /// Reads `key` through the node (with the key's tag, so a load from the origin carries it)
    /// and records what came back: the version the body encodes, `Concord-Stale` and
    /// `Concord-Source`. A 404 is recorded as "not found" (the checker then judges it as older
    /// than any version); other statuses and transport errors as failures.
    @discardableResult
    package func read(target index: Int, key: String, purpose: Operation.Purpose = .workload) async -> Operation {
        let target = targets[index]
        let pending = recorder.begin(.read, node: target.id, key: key, purpose: purpose)
        let response: NodeResponse
        do {
            response = try await target.client.get(key, tags: [tag(ofKeyAt: keyIndex(key))])
        } catch {
            return recorder.complete(pending, .failed(Self.describe(error)))
        }
        let source = response.source.flatMap { Operation.Source(rawValue: $0.lowercased()) }
        switch response.status {
        case 200:
            guard let version = origin.sizes.version(of: response.body, key: key) else {
                let body = String(decoding: response.body.prefix(40), as: UTF8.self)
                corrupt.withLock { $0.append("\(target.id)/\(key): body '\(body)' (\(response.body.count) bytes)") }
                return recorder.complete(pending, .failed("body is not a version's value: '\(body)'"), stale: response.isStale, source: source)
            }
            return recorder.complete(pending, .ok(version: version), stale: response.isStale, source: source)
        case 404:
            return recorder.complete(pending, .ok(version: nil), stale: response.isStale, source: source)
        default:
            return recorder.complete(pending, .failed("HTTP \(response.status): \(String(decoding: response.body.prefix(120), as: UTF8.self))"))
        }
    }

    /// Raises the key's version in the origin, then writes it through the node: PUT of the new
    /// value (with the key's tag; `background` for `?background=true`), or DELETE. The
    /// operation starts before the origin write and is acknowledged when the node answers 2xx;
    /// its version is the one the origin now holds.
    @discardableResult
    package func mutate(target index: Int, key: String, kind: Operation.Kind, background: Bool = false) async -> Operation {
        precondition(kind == .write || kind == .delete, "mutate writes with PUT or DELETE")
        let target = targets[index]
        let tags = [tag(ofKeyAt: keyIndex(key))]
        return await gate.withShared {
            let operations = await self.mutation(kind, target: target, keys: [key], background: background && kind == .write) { versions in
                let version = versions[key]!
                return kind == .write
                    ? try await target.client.set(key, value: self.origin.sizes.value(key: key, version: version), background: background, tags: tags)
                    : try await target.client.delete(key)
            }
            return operations[0]
        }
    }

    /// Raises each key's version in the origin, then POST /v1/invalidate with all of them:
    /// one operation per key, acknowledged together.
    @discardableResult
    package func invalidate(target index: Int, keys: [String]) async -> [Operation] {
        let target = targets[index]
        return await gate.withShared {
            await self.mutation(.invalidate, target: target, keys: keys) { _ in try await target.client.invalidate(keys) }
        }
    }

    /// Raises the version of every key of the tag in the origin, then DELETE /v1/tags/{tag}:
    /// one operation per key.
    @discardableResult
    package func removeTag(target index: Int, tag: String, keys: [String]) async -> [Operation] {
        let target = targets[index]
        return await gate.withShared {
            await self.mutation(.removeTag, target: target, keys: keys) { _ in try await target.client.removeTag(tag) }
        }
    }

    /// Alone (no other mutation in flight), unless some key is quarantined: raises every key
    /// of the origin to one new version, then POST /v1/clear. One operation, on every key.
    @discardableResult
    package func clear(target index: Int) async -> Operation? {
        let target = targets[index]
        return await gate.withExclusive { () -> Operation? in
            let now = self.recorder.now()
            guard !self.quarantined.withLock({ $0.values.contains { $0 > now } }) else { return nil }
            let pending = self.recorder.begin(.clear, node: target.id, key: Operation.everyKey)
            let version: Int64
            do {
                version = try await self.origin.bumpAll()
            } catch {
                return self.recorder.complete(pending, .failed("origin: \(error)"))
            }
            do {
                let response = try await target.client.clear()
                guard response.isSuccess else {
                    return self.recorder.complete(pending, .failed("HTTP \(response.status): \(String(decoding: response.body.prefix(120), as: UTF8.self))"))
                }
            } catch {
                return self.recorder.complete(pending, .failed(Self.describe(error)))
            }
            let operation = self.recorder.complete(pending, .ok(version: version))
            self.acked.withLock { map in
                for key in self.keys { map[key] = (max(map[key]?.version ?? 0, version), operation.end) }
            }
            return operation
        }
    }

    /// The common shape of a mutation of `keys`: begin one operation per key, raise the keys in
    /// the origin, send the request, and acknowledge every operation with its key's new version
    /// on 2xx (failures quarantine the keys).
    private func mutation(
        _ kind: Operation.Kind, target: Target, keys: [String], background: Bool = false,
        _ send: @Sendable ([String: Int64]) async throws -> NodeResponse
    ) async -> [Operation] {
        let pending = keys.map { recorder.begin(kind, node: target.id, key: $0) }
        func failAll(_ message: String) -> [Operation] {
            quarantine(keys)
            return pending.map { recorder.complete($0, .failed(message), background: background) }
        }
        let versions: [String: Int64]
        do {
            versions = try await origin.bump(keys)
        } catch {
            return failAll("origin: \(error)")
        }
        let response: NodeResponse
        do {
            response = try await send(versions)
        } catch {
            return failAll(Self.describe(error))
        }
        guard response.isSuccess else {
            return failAll("HTTP \(response.status): \(String(decoding: response.body.prefix(120), as: UTF8.self))")
        }
        let operations = pending.map { recorder.complete($0, .ok(version: versions[$0.key]!), background: background) }
        acked.withLock { map in
            for operation in operations {
                map[operation.key] = (max(map[operation.key]?.version ?? 0, operation.outcome.version!), operation.end)
            }
        }
        return operations
    }

    /// The highest version acknowledged for `key` so far (0 if none: the seeded version 1 is
    /// not an acknowledged write).
    package func latestAcked(_ key: String) -> Int64 {
        acked.withLock { $0[key]?.version ?? 0 }
    }

    /// The keys to probe after a heal: those mutated since `since`, most recent first, then the
    /// hottest, at most `configuration.probeKeys`.
    func probeKeys(mutatedSince since: Duration) -> [String] {
        let limit = max(1, configuration.probeKeys)
        let recent = acked.withLock { map in
            map.filter { $0.value.at >= since }.sorted { $0.value.at > $1.value.at }.map(\.key)
        }
        var chosen = Array(recent.prefix(limit))
        if recent.count > keys.count / 2 { chosen = Array(recent.prefix(limit / 2)) }  // a clear: keep room for hot keys
        var seen = Set(chosen)
        for index in popularity.hottest(limit) where chosen.count < limit && !seen.contains(keys[index]) {
            chosen.append(keys[index])
            seen.insert(keys[index])
        }
        return chosen
    }

    /// Every 200 answer whose body was not a version, as "node/key: body".
    package var corruptReads: [String] { corrupt.withLock { $0 } }

    static func describe(_ error: any Error) -> String {
        if let error = error as? NodeClientError { return "\(error.code): \(error.message)" }
        if let error = error as? ChaosError { return "\(error.code): \(error.message)" }
        return "\(error)"
    }
}
