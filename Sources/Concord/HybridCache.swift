import Logging
import ServiceLifecycle
import Synchronization

/// A hybrid cache: a local in-memory L1 in front of an optional shared L2, kept coherent with
/// other nodes by an optional backplane. A `final class`, not an actor, so an L1 hit takes one
/// shard lock and no actor hop. Run it as a `Service` (`run()`, in a `ServiceGroup`) and await
/// `ready(timeout:)`: `run()` drives the L2 and backplane connections, the subscriber and the
/// background work. Until `run()` is active, an operation that needs a networked L2 or
/// backplane throws `CacheError(.notRunning)` instead of acknowledging a write that would be lost.
public final class HybridCache: Service, Sendable {
    public let configuration: HybridCacheConfiguration
    let logger: Logger
    let clock: any CacheClock
    let versions: HybridLogicalClock
    /// The node ids L1 entries share instead of each holding a string.
    let nodeNames: NodeNameTable
    let codec: ValueCodec
    let memory: MemoryCache<String, MemoryEntry>
    let distributed: (any DistributedCache)?
    let backplane: (any Backplane)?
    /// Nil unless a tracer was configured or bootstrapped (`CacheTracing`).
    @usableFromInline let tracing: CacheTracing?
    let flights = Mutex<[String: Flight]>([:])
    let background = BackgroundRunner()
    let pending: PendingWrites
    /// Where every event is reported: statistics, metrics, `events()` and the log in one call.
    let instrumentation: CacheInstrumentation
    let coherence = Mutex(CoherenceState())
    /// Touched only by the coherence loop; a Mutex so the class stays Sendable.
    let headChecks = Mutex(HeadCheckState())
    /// Backplane messages handed to the coherence loop and not yet taken (bounded by
    /// `coherenceQueueCapacity`), and whether messages were dropped since the last resync.
    let queuedMessages = Atomic<Int>(0)
    let queueOverflowed = Atomic<Bool>(false)
    /// The coherence loop's inputs; `run()` starts the loop that takes them.
    let coherenceInbox = CoherenceInbox()
    /// Whether a `storeBehind` input waits in `coherenceInbox` (`requestSynchronization`).
    let synchronizationRequested = Atomic<Bool>(false)
    /// Monotonic nanoseconds since which the backplane has been unreachable; `Int64.max` while
    /// connected. Read on every hit, so it is an atomic rather than part of `coherence`.
    let disconnectedSince = Atomic<Int64>(0)
    /// Monotonic nanoseconds when the last successful synchronization asked for the head: the
    /// node held every write acknowledged before then. A loss is counted from here, not from
    /// when it is noticed, which can be a heartbeat and a command timeout later.
    let lastConfirmedCurrent = Atomic<Int64>(0)
    let maxDisconnectedNanoseconds: Int64
    /// A random id of this cache instance, sent beside the node id in every message, so a second
    /// live process running with the same node id can be told apart (and reported).
    public let instanceID: UInt64 = CacheMutation.randomWriteID()
    /// Set when another live process is seen writing with this node's id.
    let duplicateNodeID = Atomic<Bool>(false)
    /// Wall milliseconds when this cache was created: a message with this node's id from another
    /// instance, versioned after this, comes from a live process rather than a previous run.
    let createdAtWallMilliseconds: Int64
    private let runState = Mutex(RunState.idle)
    /// Whether `run()` is active; read by every operation that needs L2 or the backplane.
    let runActive = Atomic<Bool>(false)
    /// Set once graceful shutdown or cancellation began: the disconnections that follow are the
    /// cache's own doing and are not warned about.
    let stopping = Atomic<Bool>(false)
    /// Whether the L2 has connected since `run()` started (it reports `reachable`).
    let distributedConnected = Atomic<Bool>(false)
    /// Tasks in `ready(timeout:)`, woken whenever readiness may have changed.
    let readiness = ConditionWaiters()

    private enum RunState { case idle, running, finished }

    /// Creates a cache. Throws `CacheError(.invalidConfiguration)` for out-of-range settings.
    public init(
        configuration: HybridCacheConfiguration = HybridCacheConfiguration(),
        distributed: (any DistributedCache)? = nil,
        backplane: (any Backplane)? = nil,
        serializer: any CacheSerializer = JSONCacheSerializer(),
        clock: any CacheClock = SystemCacheClock(),
        logger: Logger = Logger(label: "concord.cache")
    ) throws {
        try configuration.validate()
        self.configuration = configuration
        var logger = logger
        logger[metadataKey: "concord.cache"] = .string(configuration.cacheName)
        logger[metadataKey: "concord.node"] = .string(configuration.nodeID)
        self.logger = logger
        self.clock = clock
        self.versions = HybridLogicalClock(node: configuration.nodeID, clock: clock, maxDrift: configuration.maxClockDrift)
        self.nodeNames = NodeNameTable(own: configuration.nodeID)
        self.codec = ValueCodec(serializer: serializer)
        var memoryBounds = configuration.memory
        if let bytes = configuration.memoryMaxBytes { memoryBounds.maxCost = bytes }
        self.memory = MemoryCache(configuration: memoryBounds)
        let tracing = CacheTracing.resolve(configuration)
        self.tracing = tracing
        self.distributed = tracing?.traced(distributed) ?? distributed
        self.backplane = tracing?.traced(backplane) ?? backplane
        self.pending = PendingWrites(capacity: configuration.pendingWriteCapacity, maxBytes: configuration.pendingWriteMaxBytes)
        self.instrumentation = CacheInstrumentation(
            logger: logger,
            metrics: CacheMetrics(
                cacheName: configuration.cacheName, node: configuration.nodeID, pendingWriteCapacity: configuration.pendingWriteCapacity
            ),
            eventHub: EventHub(bufferSize: configuration.eventBufferSize)
        )
        self.maxDisconnectedNanoseconds = configuration.maxDisconnectedStaleness.nanosecondsClamped
        self.createdAtWallMilliseconds = clock.wallClockMilliseconds()
        // Until the backplane has been synchronized once, the node has not been told of any
        // other node's writes: it counts as cut off from its creation.
        disconnectedSince.store(backplane == nil ? .max : clock.now().nanoseconds, ordering: .relaxed)
        lastConfirmedCurrent.store(clock.now().nanoseconds, ordering: .relaxed)
    }

    /// A stream of what happens in the cache. Each call returns a new stream.
    public func events() -> AsyncStream<CacheEvent> { instrumentation.eventHub.stream() }

    /// This node's id.
    public var nodeID: String { configuration.nodeID }

    /// Whether another live process writes with this node's id (a copied configuration): its
    /// writes are applied, but the node is not ready until the duplicate is gone.
    public var hasDuplicateNodeID: Bool { duplicateNodeID.load(ordering: .relaxed) }

    /// Whether the backplane subscription is live and synchronized.
    public var isBackplaneConnected: Bool {
        backplane != nil && disconnectedSince.load(ordering: .relaxed) == .max
    }

    /// Counters, in the shape of the node's `GET /v1/stats`.
    public var statistics: HybridCacheStatistics {
        var stats = HybridCacheStatistics()
        stats.node = configuration.nodeID
        stats.cacheName = configuration.cacheName
        let memoryStats = memory.statistics
        stats.memory.entries = memoryStats.entryCount
        stats.memory.hits = memoryStats.hits
        stats.memory.misses = memoryStats.misses
        stats.memory.evictions = memoryStats.evictions
        stats.distributed.corruptEntries = distributed?.corruptEntries ?? 0
        instrumentation.fill(&stats)
        let coherenceState = coherence.withLock { $0 }
        stats.backplane.connected = isBackplaneConnected
        stats.backplane.epoch = coherenceState.epoch
        stats.backplane.lastSeq = coherenceState.lastSequence
        stats.backplane.duplicateNodeID = duplicateNodeID.load(ordering: .relaxed)
        let pendingCounters = pending.counters
        stats.autoRecovery.queued = pendingCounters.queued
        stats.autoRecovery.flushed = pendingCounters.flushed
        // No acknowledged write or invalidation is ever pushed out; what overflows is origin
        // fills given up for lack of room.
        stats.autoRecovery.overflowed = pendingCounters.dropped
        stats.autoRecovery.refused = pendingCounters.refused
        stats.autoRecovery.depth = pendingCounters.depth
        stats.autoRecovery.bytes = pendingCounters.bytes
        return stats
    }

    /// Whether `key` is in Unicode normalization form C, the only form the cache accepts: L1
    /// compares keys as strings and Redis by bytes, which agree only for NFC keys.
    public static func isNormalizedKey(_ key: String) -> Bool {
        KeyNormalization.isNFC(key)
    }

    /// Checks a key: not empty, not longer than `maxKeyBytes`, in NFC.
    @inline(__always)
    func validate(key: String) throws {
        let length = key.utf8.count
        if length == 0 { throw CacheError(.invalidKey, "the key is empty") }
        if length > configuration.maxKeyBytes {
            throw CacheError(.keyTooLong, "the key is \(length) bytes; the limit is \(configuration.maxKeyBytes)")
        }
        // L1, flights and the queue compare keys as strings, Redis by bytes: only NFC keys
        // mean the same to both (see `KeyNormalization`).
        guard KeyNormalization.isNFC(key) else {
            throw CacheError(.invalidKey, "the key is not in Unicode normalization form C; send its NFC form (e.g. U+00E9, not e + U+0301)")
        }
    }

    /// Whether the node has been cut off from the backplane for longer than allowed, so its L1
    /// values count only as fail-safe values.
    @inline(__always)
    func isCutOff(now: CacheInstant) -> Bool {
        let since = disconnectedSince.load(ordering: .relaxed)
        if since == .max { return false }
        return now.nanoseconds &- since > maxDisconnectedNanoseconds
    }

    // MARK: - Service

    /// Runs the background work until cancelled or until graceful shutdown; on graceful
    /// shutdown, pending L2 writes are flushed for up to `shutdownDrainTimeout` first.
    public func run() async throws {
        let canStart = runState.withLock { state -> Bool in
            guard case .idle = state else { return false }
            state = .running
            return true
        }
        guard canStart, let jobs = background.open() else {
            throw CacheError(.invalidConfiguration, "run() was called more than once on cache '\(configuration.cacheName)'")
        }
        runActive.store(true, ordering: .relaxed)
        readiness.wakeAll()
        logger.info("cache running", metadata: [
            "concord.distributed": .stringConvertible(distributed != nil),
            "concord.backplane": .stringConvertible(backplane != nil),
        ])
        defer {
            runState.withLock { $0 = .finished }
            runActive.store(false, ordering: .relaxed)
            stopping.store(true, ordering: .relaxed)
            readiness.wakeAll()
            background.close()
            instrumentation.eventHub.finish()
        }
        try await withThrowingDiscardingTaskGroup { group in
            if let distributed {
                let events = DistributedCacheEvents(
                    reachable: {
                        if !self.distributedConnected.exchange(true, ordering: .relaxed) { self.readiness.wakeAll() }
                        self.noteDistributedReachable()
                    },
                    dataLost: { reason in self.noteDistributedDataLost(reason) }
                )
                group.addTask { try await self.superviseComponent("distributed cache") { try await distributed.run(events: events) } }
            }
            if let backplane {
                let inbox = coherenceInbox
                let sink = BackplaneEventSink { self.enqueueCoherenceInput($0, into: inbox) }
                group.addTask { try await self.superviseComponent("backplane") { try await backplane.run(events: sink) } }
                group.addTask { await self.runCoherence(backplane, inbox: inbox) }
            }
            group.addTask { await self.runPendingWrites() }
            group.addTask { await self.runMetricsExport() }
            group.addTask {
                // Graceful shutdown: stop taking background work, flush what is pending, stop.
                try? await gracefulShutdown()
                self.stopping.store(true, ordering: .relaxed)
                self.background.close()
            }
            for await job in jobs {
                group.addTask { await job() }
            }
            if !Task.isCancelled {
                await self.drainPendingWrites(timeout: self.configuration.shutdownDrainTimeout)
            }
            stopping.store(true, ordering: .relaxed)
            group.cancelAll()
        }
        logger.info("cache stopped")
    }

    /// Runs a component's own background work; if it fails, logs and restarts it after a
    /// backoff, so one failing component never stops the cache.
    private func superviseComponent(_ name: String, _ body: @Sendable () async throws -> Void) async throws {
        _ = try? await Retry.run(
            backoff: RetryBackoff(base: configuration.retryBackoffBase, cap: configuration.retryBackoffCap),
            sleep: { try? await self.clock.sleep(for: $0) },
            isRetryable: { _ in !Task.isCancelled && !self.stopping.load(ordering: .relaxed) },
            onFailure: { error, _, _ in self.instrumentation.componentFailed(name, error: error) }
        ) { _ in try await body() }
    }

    /// Hands the counters kept by their owners (L1's per shard, the pending queue's) and the
    /// gauges to swift-metrics once a second.
    private func runMetricsExport() async {
        while !Task.isCancelled {
            exportMetrics()
            do { try await clock.sleep(for: .seconds(1)) } catch { return }
        }
    }

    /// Brings swift-metrics up to `statistics` now: a scrape calls it first, so `/metrics` and
    /// `/v1/stats` show the same numbers.
    package func exportMetrics() {
        instrumentation.export(statistics)
    }

    /// Runs `job` in the background task group, or returns false when `run()` is not active.
    func runInBackground(_ job: @escaping @Sendable () async -> Void) -> Bool {
        background.submit(tracing.map { $0.carryingContext(job) } ?? job)
    }

    // MARK: - Readiness

    /// Returns once `run()` is active, L2 has connected and the backplane has synchronized
    /// (whichever of the two the cache has). Call it after starting the cache's `ServiceGroup`;
    /// it waits for `run()` to start. Throws `CacheError(.notReady)` naming what is missing when
    /// `timeout` passes first, and `CacheError(.notRunning)` when `run()` has already finished.
    public func ready(timeout: Duration) async throws {
        let deadline = clock.now() + timeout
        let outcome = try await withDeadline(deadline, clock: clock) {
            await self.readiness.wait { self.isReady || self.hasFinished }
        }
        if hasFinished { throw notRunningError("ready(timeout:) was called after run() finished") }
        if case .timedOut = outcome, !isReady {
            throw CacheError(.notReady, "cache '\(configuration.cacheName)' was not ready within \(timeout): \(readinessShortfall)")
        }
    }

    /// Whether `run()` is active (started and not finished).
    public var isRunning: Bool { runActive.load(ordering: .relaxed) }

    /// Whether `run()` is active, L2 has connected and the backplane has synchronized.
    public var isReady: Bool {
        guard runActive.load(ordering: .relaxed) else { return false }
        if let distributed, !distributed.isUsableWithoutRun, !distributedConnected.load(ordering: .relaxed) { return false }
        if backplane != nil, !isBackplaneConnected { return false }
        return true
    }

    private var hasFinished: Bool { runState.withLock { if case .finished = $0 { true } else { false } } }

    /// What `ready(timeout:)` still waits for.
    private var readinessShortfall: String {
        var missing: [String] = []
        if !runActive.load(ordering: .relaxed) { missing.append("run() has not started (run the cache in a ServiceGroup)") }
        if let distributed, !distributed.isUsableWithoutRun, !distributedConnected.load(ordering: .relaxed) {
            missing.append("L2 has not connected")
        }
        if backplane != nil, !isBackplaneConnected { missing.append("the backplane has not synchronized") }
        return missing.joined(separator: "; ")
    }

    /// Throws `notRunning` when `run()` is not active and the operation needs an L2 or a
    /// backplane that only `run()` connects. Checked before anything is applied.
    @inline(__always)
    func requireRunning(distributed usesDistributed: Bool, backplane usesBackplane: Bool) throws {
        if runActive.load(ordering: .relaxed) { return }
        let needsRun = (usesDistributed && distributed.map { !$0.isUsableWithoutRun } == true)
            || (usesBackplane && backplane.map { !$0.isUsableWithoutRun } == true)
        if needsRun { throw notRunningError("nothing was read or written") }
    }

    func notRunningError(_ detail: String) -> CacheError {
        let phase = hasFinished ? "run() has finished" : "run() is not active"
        return CacheError(
            .notRunning,
            "cache '\(configuration.cacheName)': \(phase), and only run() connects its L2 and backplane; run the cache in a ServiceGroup and await ready(timeout:) (\(detail))"
        )
    }

    private let warnedNotRunning = Atomic<Bool>(false)

    /// Logs once that background work was skipped because `run()` is not active.
    func noteNotRunning(_ what: String) {
        if !warnedNotRunning.exchange(true, ordering: .relaxed) {
            logger.notice("run() is not active: \(what) runs inline or not at all; run the cache as a Service for background work")
        }
    }
}
