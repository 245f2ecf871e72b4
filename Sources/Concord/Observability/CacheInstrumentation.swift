import Logging
import Metrics
import Synchronization

/// The one place a cache reports what happens in it. Each event is one call, which updates the
/// statistics (`HybridCache.statistics`, the node's `/v1/stats`), the swift-metrics instruments
/// (the node's `/metrics`), the `events()` streams and the log together, so they cannot
/// disagree. Counters that live with their owners (L1's per-shard hits, misses and evictions,
/// kept there so the hit path touches no shared atomic; the pending-write queue's counts, kept
/// under its lock) reach metrics through `export`, as the difference to what it handed over
/// last, once a second and before every scrape.
final class CacheInstrumentation: Sendable {
    let logger: Logger
    let metrics: CacheMetrics
    let eventHub: EventHub

    private let distributedHits = Atomic<Int>(0)
    private let distributedMisses = Atomic<Int>(0)
    private let distributedErrors = Atomic<Int>(0)
    private let futureEntryVersions = Atomic<Int>(0)
    private let outOfMemoryErrors = Atomic<Int>(0)
    private let rebasedWrites = Atomic<Int>(0)
    private let factoryCalls = Atomic<Int>(0)
    private let factoryErrors = Atomic<Int>(0)
    private let factoryTimeouts = Atomic<Int>(0)
    private let staleServed = Atomic<Int>(0)
    private let published = Atomic<Int>(0)
    private let received = Atomic<Int>(0)
    private let gapsDetected = Atomic<Int>(0)
    private let replays = Atomic<Int>(0)
    private let fullExpiries = Atomic<Int>(0)
    private let ignoredMessages = Atomic<Int>(0)
    private let unauthenticatedMessages = Atomic<Int>(0)
    private let futureMessageVersions = Atomic<Int>(0)
    private let queueOverflows = Atomic<Int>(0)
    private let rollbacksDetected = Atomic<Int>(0)
    private let rolledBackReads = Atomic<Int>(0)
    /// What `export` last handed to metrics, for the counters kept by their owners.
    private let exported = Mutex(HybridCacheStatistics())

    init(logger: Logger, metrics: CacheMetrics, eventHub: EventHub) {
        self.logger = logger
        self.metrics = metrics
        self.eventHub = eventHub
    }

    // MARK: - Statistics and export

    /// Writes the counters kept here into `statistics` (L1, the coherence position and the
    /// pending queue come from their owners).
    func fill(_ statistics: inout HybridCacheStatistics) {
        statistics.distributed.hits = distributedHits.load(ordering: .relaxed)
        statistics.distributed.misses = distributedMisses.load(ordering: .relaxed)
        statistics.distributed.errors = distributedErrors.load(ordering: .relaxed)
        statistics.distributed.futureVersions = futureEntryVersions.load(ordering: .relaxed)
        statistics.distributed.outOfMemoryErrors = outOfMemoryErrors.load(ordering: .relaxed)
        statistics.distributed.rebasedWrites = rebasedWrites.load(ordering: .relaxed)
        statistics.distributed.rolledBackReads = rolledBackReads.load(ordering: .relaxed)
        statistics.factory.calls = factoryCalls.load(ordering: .relaxed)
        statistics.factory.errors = factoryErrors.load(ordering: .relaxed)
        statistics.factory.timeouts = factoryTimeouts.load(ordering: .relaxed)
        statistics.staleServed = staleServed.load(ordering: .relaxed)
        statistics.backplane.published = published.load(ordering: .relaxed)
        statistics.backplane.received = received.load(ordering: .relaxed)
        statistics.backplane.gapsDetected = gapsDetected.load(ordering: .relaxed)
        statistics.backplane.replays = replays.load(ordering: .relaxed)
        statistics.backplane.fullExpiries = fullExpiries.load(ordering: .relaxed)
        statistics.backplane.ignoredMessages = ignoredMessages.load(ordering: .relaxed)
        statistics.backplane.unauthenticatedMessages = unauthenticatedMessages.load(ordering: .relaxed)
        statistics.backplane.futureVersions = futureMessageVersions.load(ordering: .relaxed)
        statistics.backplane.queueOverflows = queueOverflows.load(ordering: .relaxed)
        statistics.backplane.rollbacksDetected = rollbacksDetected.load(ordering: .relaxed)
    }

    /// Hands the counters kept by their owners (taken from `statistics`), and the gauges, to
    /// metrics. Safe to call from several places at once: each increment is the difference to
    /// the last hand-over, under one lock, so nothing is counted twice.
    func export(_ statistics: HybridCacheStatistics) {
        exported.withLock { last in
            Self.increment(metrics.memoryHits, from: last.memory.hits, to: statistics.memory.hits)
            Self.increment(metrics.memoryMisses, from: last.memory.misses, to: statistics.memory.misses)
            Self.increment(metrics.memoryEvictions, from: last.memory.evictions, to: statistics.memory.evictions)
            Self.increment(metrics.pendingQueued, from: last.autoRecovery.queued, to: statistics.autoRecovery.queued)
            Self.increment(metrics.pendingFlushed, from: last.autoRecovery.flushed, to: statistics.autoRecovery.flushed)
            Self.increment(metrics.pendingRefused, from: last.autoRecovery.refused, to: statistics.autoRecovery.refused)
            Self.increment(metrics.pendingOverflow, from: last.autoRecovery.overflowed, to: statistics.autoRecovery.overflowed)
            last.memory = statistics.memory
            last.autoRecovery = statistics.autoRecovery
        }
        metrics.memoryEntries.record(statistics.memory.entries)
        metrics.pendingDepth.record(statistics.autoRecovery.depth)
        metrics.pendingBytes.record(statistics.autoRecovery.bytes)
        metrics.backplaneConnected.record(statistics.backplane.connected ? 1 : 0)
        metrics.duplicateNodeID.record(statistics.backplane.duplicateNodeID ? 1 : 0)
        metrics.lastSequence.record(Int64(clamping: statistics.backplane.lastSeq))
        metrics.corruptEntries.record(statistics.distributed.corruptEntries)
    }

    private static func increment(_ counter: Counter, from last: Int, to current: Int) {
        if current > last { counter.increment(by: Int64(current - last)) }
    }

    // MARK: - Reads

    /// L1 served a value (L1 counted the hit itself); `stale` when it is a fail-safe value.
    /// The key is built only if someone listens for events (a front end that looked the key up
    /// by its bytes has no `String` for it otherwise).
    @inline(__always)
    func memoryHit(key: @autoclosure () -> String, stale: Bool) {
        if stale {
            staleServed.add(1, ordering: .relaxed)
            metrics.staleServed.increment()
        }
        eventHub.emit(.hit(key: key(), source: .memory, stale: stale))
    }

    /// The call found no value at any level.
    func miss(key: String) {
        eventHub.emit(.miss(key: key))
    }

    /// A fresh L2 value was served to the call.
    func distributedServed(key: String) {
        eventHub.emit(.hit(key: key, source: .distributed, stale: false))
    }

    /// L2 answered with an entry; `served` when it is served now (announced as a hit).
    func distributedHit(key: String, served: Bool) {
        distributedHits.add(1, ordering: .relaxed)
        metrics.distributedHits.increment()
        if served { distributedServed(key: key) }
    }

    /// L2 had nothing usable for the key; `announced` when the call ends as a miss here.
    func distributedMiss(key: String, announced: Bool) {
        distributedMisses.add(1, ordering: .relaxed)
        metrics.distributedMisses.increment()
        if announced { miss(key: key) }
    }

    func distributedReadTook(nanoseconds: Int64) {
        metrics.distributedReadDuration.recordNanoseconds(nanoseconds)
    }

    func distributedReadFailed(key: String, error: any Error) {
        distributedErrors.add(1, ordering: .relaxed)
        metrics.distributedErrors.increment()
        logger.debug("L2 read failed", metadata: ["concord.key": .string(key), "concord.error": "\(error)"])
        eventHub.emit(.distributedError(operation: "read", error: "\(error)"))
    }

    /// An L2 entry claimed a version more than `maxClockDrift` ahead and was read as a miss.
    func distributedFutureVersion(key: String, version: CacheVersion) {
        futureEntryVersions.add(1, ordering: .relaxed)
        metrics.distributedFutureVersions.increment()
        logger.warning("L2 entry version is more than maxClockDrift ahead; reading it as a miss", metadata: [
            "concord.key": .string(key), "concord.version": "\(version)",
        ])
    }

    /// An L2 read found the log's head below what this node had applied (Redis went back) and
    /// was read as expired. Logged at info only for the read that asked for a synchronization
    /// (`asked`), at debug for the others: every read until then finds it, and the
    /// synchronization logs the rollback itself.
    func distributedRolledBackRead(key: String, head: UInt64, applied: UInt64, asked: Bool) {
        rolledBackReads.add(1, ordering: .relaxed)
        metrics.distributedRolledBackReads.increment()
        logger.log(level: asked ? .info : .debug, "L2 went back below the log position this node applied; reading the entry as expired", metadata: [
            "concord.key": .string(key), "concord.head": "\(head)", "concord.last": "\(applied)",
        ])
    }

    /// How old a value is when it is served from L2 or by fail-safe (L1 hits are not timed, to
    /// keep the hit path free of shared state).
    func valueServed(ageMilliseconds age: Int64) {
        if age >= 0 { metrics.servedValueAge.recordMilliseconds(min(age, Int64.max / 1_000_000)) }
    }

    /// A stale L1 value stood in because a level failed (fail-safe), without renewing it.
    func staleValueServed(key: String, source: CacheValueSource, ageMilliseconds: Int64) {
        staleServed.add(1, ordering: .relaxed)
        metrics.staleServed.increment()
        valueServed(ageMilliseconds: ageMilliseconds)
        eventHub.emit(.hit(key: key, source: source, stale: true))
    }

    // MARK: - Factory

    func factoryCalled(key: String) {
        factoryCalls.add(1, ordering: .relaxed)
        metrics.factoryCalls.increment()
        eventHub.emit(.factoryCalled(key: key))
    }

    func factoryFinished(nanoseconds: Int64) {
        metrics.factoryDuration.recordNanoseconds(nanoseconds)
    }

    func factoryTimedOut(key: String, soft: Bool) {
        factoryTimeouts.add(1, ordering: .relaxed)
        metrics.factoryTimeouts.increment()
        eventHub.emit(.factoryTimedOut(key: key, soft: soft))
        logger.debug("factory timed out", metadata: ["concord.key": .string(key), "concord.soft": "\(soft)"])
    }

    func factoryFailed(key: String, error: any Error) {
        factoryErrors.add(1, ordering: .relaxed)
        metrics.factoryErrors.increment()
        eventHub.emit(.factoryFailed(key: key, error: "\(error)"))
        logger.debug("factory failed", metadata: ["concord.key": .string(key), "concord.error": "\(error)"])
    }

    func backgroundFactoryCompleted(key: String) {
        eventHub.emit(.backgroundFactoryCompleted(key: key))
        logger.debug("background factory completed", metadata: ["concord.key": .string(key)])
    }

    func backgroundFactoryNotStored(key: String, error: any Error) {
        logger.warning("background factory result could not be stored", metadata: ["concord.key": .string(key), "concord.error": "\(error)"])
    }

    /// Fail-safe served a stale value after a failure and renewed it for the throttle duration.
    func failSafeActivated(key: String, error: any Error, ageMilliseconds: Int64) {
        staleServed.add(1, ordering: .relaxed)
        metrics.staleServed.increment()
        valueServed(ageMilliseconds: ageMilliseconds)
        eventHub.emit(.failSafeActivated(key: key))
        logger.debug("fail-safe activated", metadata: ["concord.key": .string(key), "concord.error": "\(error)"])
    }

    func failSafeExhausted(key: String) {
        logger.debug("fail-safe cycles exhausted", metadata: ["concord.key": .string(key)])
    }

    func eagerRefreshStarted(key: String) {
        eventHub.emit(.eagerRefreshStarted(key: key))
    }

    // MARK: - Writes and auto-recovery

    /// A mutation was announced on the backplane (by the L2 script or by the backplane alone).
    func published(key: String) {
        published.add(1, ordering: .relaxed)
        metrics.published.increment()
    }

    func writeSuperseded(key: String, version: CacheVersion, newer: CacheVersion) {
        logger.debug("write superseded by a newer version", metadata: [
            "concord.key": .string(key), "concord.version": "\(version)", "concord.newer": "\(newer)",
        ])
    }

    /// A live write found a newer version stored by a clock that ran ahead and goes again after it.
    func writeRebased(key: String, version: CacheVersion, stored: CacheVersion, rebased: CacheVersion) {
        rebasedWrites.add(1, ordering: .relaxed)
        metrics.rebasedWrites.increment()
        logger.debug("write rebased after a newer stored version", metadata: [
            "concord.key": .string(key), "concord.version": "\(version)",
            "concord.stored": "\(stored)", "concord.rebased": "\(rebased)",
        ])
    }

    /// An L2 write failed; it is queued for recovery when `run()` is active.
    func distributedWriteFailed(key: String, error: any Error) {
        distributedErrors.add(1, ordering: .relaxed)
        metrics.distributedErrors.increment()
        eventHub.emit(.distributedError(operation: "write", error: "\(error)"))
        logger.debug("L2 write failed; queued for recovery", metadata: ["concord.key": .string(key), "concord.error": "\(error)"])
    }

    /// A queued write failed again while flushing.
    func pendingWriteFailed(key: String, error: any Error) {
        distributedErrors.add(1, ordering: .relaxed)
        metrics.distributedErrors.increment()
        logger.debug("pending write still failing", metadata: ["concord.key": .string(key), "concord.error": "\(error)"])
    }

    /// Redis refused a write because it is full (`maxmemory` under `noeviction`): the write stays
    /// queued and lands once memory is freed, but never silently.
    func distributedOutOfMemory(key: String, pending: Int, error: any Error) {
        outOfMemoryErrors.add(1, ordering: .relaxed)
        metrics.distributedOutOfMemory.increment()
        logger.error("L2 refused a write: Redis is at maxmemory under noeviction; the write stays queued", metadata: [
            "concord.key": .string(key), "concord.pending": "\(pending)", "concord.error": "\(error)",
        ])
    }

    /// A write was refused with `writeQueueFull` (counted by the queue).
    func pendingWriteRefused(key: String) {
        logger.debug("write refused: the pending L2 write queue is full", metadata: ["concord.key": .string(key)])
    }

    /// A write took a slot of its own in the pending queue (counted by the queue).
    func pendingWriteQueued(key: String) {
        eventHub.emit(.pendingWriteQueued(key: key))
    }

    /// An origin fill was given up for lack of room in the pending queue (counted by the queue).
    func pendingWriteDropped(key: String) {
        eventHub.emit(.pendingWriteDropped(key: key))
        logger.debug("pending L2 queue full: dropped an origin fill", metadata: ["concord.key": .string(key)])
    }

    /// Once per full episode, not once per key: an invalidation of 10,000 keys logs one line.
    func pendingQueueFull(capacity: Int, maxBytes: Int) {
        logger.warning("pending L2 write queue is full: writes are refused with writeQueueFull, origin fills dropped", metadata: [
            "concord.capacity": "\(capacity)", "concord.maxBytes": "\(maxBytes)",
        ])
    }

    func shutdownDrainStarted(pending: Int) {
        logger.info("flushing pending L2 writes before shutdown", metadata: ["concord.count": "\(pending)"])
    }

    func shutdownDrainIncomplete(pending: Int) {
        logger.warning("shutdown left pending L2 writes unflushed", metadata: ["concord.count": "\(pending)"])
    }

    /// A flush applied `count` queued writes (the queue counts those that left it).
    func pendingWritesFlushed(count: Int) {
        guard count > 0 else { return }
        eventHub.emit(.pendingWritesFlushed(count: count))
        logger.debug("pending writes flushed", metadata: ["concord.count": "\(count)"])
    }

    // MARK: - Coherence

    /// The queue from the subscriber to the coherence loop was full: the node resynchronizes.
    func coherenceQueueOverflowed() {
        queueOverflows.add(1, ordering: .relaxed)
        metrics.queueOverflows.increment()
    }

    func messageReceived() {
        received.add(1, ordering: .relaxed)
        metrics.messagesReceived.increment()
    }

    /// A message or log entry was ignored; `unauthenticated` or `futureVersion` say why, when
    /// it is one of the reasons counted apart.
    func messageIgnored(reason: String, unauthenticated: Bool = false, futureVersion: Bool = false) {
        if unauthenticated {
            unauthenticatedMessages.add(1, ordering: .relaxed)
            metrics.unauthenticatedMessages.increment()
        }
        if futureVersion {
            futureMessageVersions.add(1, ordering: .relaxed)
            metrics.messageFutureVersions.increment()
        }
        ignoredMessages.add(1, ordering: .relaxed)
        metrics.messagesIgnored.increment()
        eventHub.emit(.messageIgnored(reason: reason))
        logger.debug("backplane message ignored", metadata: ["concord.reason": .string(reason)])
    }

    func messageApplied(_ message: BackplaneMessage, lagMilliseconds lag: Int64) {
        if lag >= 0 { metrics.propagationLag.recordMilliseconds(min(lag, Int64.max / 1_000_000)) }
        eventHub.emit(.messageApplied(kind: message.kind, key: message.key, source: message.source))
        logger.trace("backplane message applied", metadata: [
            "concord.kind": "\(message.kind)", "concord.key": .string(message.key), "concord.seq": "\(message.sequence)",
        ])
    }

    func gapDetected(last: UInt64, sequence: UInt64) {
        gapsDetected.add(1, ordering: .relaxed)
        metrics.gapsDetected.increment()
        eventHub.emit(.gapDetected(from: last + 1, through: sequence - 1))
        logger.debug("gap in backplane messages", metadata: ["concord.last": "\(last)", "concord.seq": "\(sequence)"])
    }

    /// The log was read for a replay.
    func logRead() {
        replays.add(1, ordering: .relaxed)
        metrics.replays.increment()
    }

    func replayed(count: Int, through: UInt64) {
        eventHub.emit(.replayed(count: count))
        logger.debug("replayed missed messages", metadata: ["concord.count": "\(count)", "concord.through": "\(through)"])
    }

    func fullExpiry(reason: String, level: Logger.Level) {
        fullExpiries.add(1, ordering: .relaxed)
        metrics.fullExpiries.increment()
        eventHub.emit(.fullExpiry(reason: reason))
        logger.log(level: level, "expired the whole L1", metadata: ["concord.reason": .string(reason)])
    }

    /// The log at this node's position is not the history it applied.
    func rollbackDetected(reason: String, last: UInt64, head: UInt64) {
        rollbacksDetected.add(1, ordering: .relaxed)
        metrics.rollbacksDetected.increment()
        logger.error("the invalidation log is not the history this node applied; expiring L1 and continuing from the head", metadata: [
            "concord.reason": .string(reason), "concord.last": "\(last)", "concord.head": "\(head)",
        ])
    }

    /// The backplane went away; `quietly` on the cache's own shutdown, which is not worth a warning.
    func backplaneDisconnected(reason: String, quietly: Bool) {
        logger.log(level: quietly ? .debug : .warning, "backplane disconnected", metadata: ["concord.reason": .string(reason)])
        eventHub.emit(.backplaneDisconnected(reason: reason))
    }

    func backplaneSynchronized(epoch: String, sequence: UInt64) {
        logger.info("backplane synchronized", metadata: ["concord.epoch": .string(epoch), "concord.seq": "\(sequence)"])
        eventHub.emit(.backplaneConnected)
    }

    // MARK: - Lifecycle

    func componentFailed(_ name: String, error: any Error) {
        logger.error("\(name) stopped with an error; restarting", metadata: ["concord.error": "\(error)"])
    }
}
