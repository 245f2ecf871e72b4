import Metrics

/// swift-metrics instruments of one cache, labelled with its name. Every counter of
/// `HybridCacheStatistics` has one, fed by `CacheInstrumentation`; L1's hits, misses and
/// evictions and the pending queue's counts are handed over from their owners' own counters
/// by `CacheInstrumentation.export`, so the hit path pays nothing.
struct CacheMetrics: Sendable {
    let memoryHits: Counter
    let memoryMisses: Counter
    let memoryEvictions: Counter
    let distributedHits: Counter
    let distributedMisses: Counter
    let distributedErrors: Counter
    let distributedFutureVersions: Counter
    let distributedOutOfMemory: Counter
    let rebasedWrites: Counter
    let distributedRolledBackReads: Counter
    let factoryCalls: Counter
    let factoryErrors: Counter
    let factoryTimeouts: Counter
    let staleServed: Counter
    let published: Counter
    let messagesReceived: Counter
    let messagesIgnored: Counter
    let unauthenticatedMessages: Counter
    let messageFutureVersions: Counter
    let queueOverflows: Counter
    let rollbacksDetected: Counter
    let gapsDetected: Counter
    let replays: Counter
    let fullExpiries: Counter
    let pendingQueued: Counter
    let pendingFlushed: Counter
    let pendingOverflow: Counter
    let pendingRefused: Counter
    let pendingDepth: Gauge
    let pendingBytes: Gauge
    let memoryEntries: Gauge
    let backplaneConnected: Gauge
    let duplicateNodeID: Gauge
    let lastSequence: Gauge
    /// Set, not counted: L2 keeps this count itself.
    let corruptEntries: Gauge
    let factoryDuration: Timer
    let distributedReadDuration: Timer
    let propagationLag: Timer
    let servedValueAge: Timer

    /// `pendingWriteCapacity` is exported once, so an alert can compare the queue with its bound.
    init(cacheName: String, node: String, pendingWriteCapacity: Int = 0) {
        let dimensions = [("cache", cacheName), ("node", node)]
        func counter(_ label: String, _ extra: [(String, String)] = []) -> Counter {
            Counter(label: label, dimensions: dimensions + extra)
        }
        memoryHits = counter("concord_hits_total", [("level", "memory")])
        memoryMisses = counter("concord_misses_total", [("level", "memory")])
        memoryEvictions = counter("concord_evictions_total")
        distributedHits = counter("concord_hits_total", [("level", "distributed")])
        distributedMisses = counter("concord_misses_total", [("level", "distributed")])
        distributedErrors = counter("concord_distributed_errors_total")
        distributedFutureVersions = counter("concord_distributed_future_versions_total")
        distributedOutOfMemory = counter("concord_distributed_out_of_memory_total")
        rebasedWrites = counter("concord_distributed_rebased_writes_total")
        distributedRolledBackReads = counter("concord_distributed_rolled_back_reads_total")
        factoryCalls = counter("concord_factory_calls_total")
        factoryErrors = counter("concord_factory_errors_total")
        factoryTimeouts = counter("concord_factory_timeouts_total")
        staleServed = counter("concord_stale_served_total")
        published = counter("concord_backplane_published_total")
        messagesReceived = counter("concord_backplane_received_total")
        messagesIgnored = counter("concord_backplane_ignored_total")
        unauthenticatedMessages = counter("concord_backplane_unauthenticated_total")
        messageFutureVersions = counter("concord_backplane_future_versions_total")
        queueOverflows = counter("concord_backplane_queue_overflows_total")
        rollbacksDetected = counter("concord_backplane_rollbacks_total")
        gapsDetected = counter("concord_backplane_gaps_total")
        replays = counter("concord_backplane_replays_total")
        fullExpiries = counter("concord_backplane_full_expiries_total")
        pendingQueued = counter("concord_pending_writes_queued_total")
        pendingFlushed = counter("concord_pending_writes_flushed_total")
        pendingOverflow = counter("concord_pending_writes_overflow_total")
        pendingRefused = counter("concord_pending_writes_refused_total")
        pendingDepth = Gauge(label: "concord_pending_writes", dimensions: dimensions)
        pendingBytes = Gauge(label: "concord_pending_writes_bytes", dimensions: dimensions)
        Gauge(label: "concord_pending_writes_capacity", dimensions: dimensions).record(pendingWriteCapacity)
        memoryEntries = Gauge(label: "concord_memory_entries", dimensions: dimensions)
        backplaneConnected = Gauge(label: "concord_backplane_connected", dimensions: dimensions)
        duplicateNodeID = Gauge(label: "concord_backplane_duplicate_node_id", dimensions: dimensions)
        lastSequence = Gauge(label: "concord_backplane_last_sequence", dimensions: dimensions)
        corruptEntries = Gauge(label: "concord_distributed_corrupt_entries", dimensions: dimensions)
        factoryDuration = Timer(label: "concord_factory_duration_seconds", dimensions: dimensions, preferredDisplayUnit: .seconds)
        distributedReadDuration = Timer(label: "concord_distributed_read_duration_seconds", dimensions: dimensions, preferredDisplayUnit: .seconds)
        propagationLag = Timer(label: "concord_propagation_lag_seconds", dimensions: dimensions, preferredDisplayUnit: .seconds)
        servedValueAge = Timer(label: "concord_served_value_age_seconds", dimensions: dimensions, preferredDisplayUnit: .seconds)
    }
}
