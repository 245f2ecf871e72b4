import Logging

extension HybridCache {
    // MARK: - Public write API

    /// Stores a value in L1 and L2 and tells other nodes. Returns the write's version.
    /// The key and the serialized size are checked first; on error nothing is stored.
    @discardableResult
    public func set<Value: Codable & Sendable>(
        _ key: String,
        _ value: Value,
        options: CacheEntryOptions? = nil,
        tags: [String] = []
    ) async throws -> CacheVersion {
        try validate(key: key)
        let options = entryOptions(options)
        try options.validate()
        let entry = try await store(value, key: key, version: versions.next(), options: options, tags: tags, source: .memory, flight: nil)
        return entry.version
    }

    /// Removes a key from every level on every node. A tombstone stays in L2 so that an older
    /// write (a queued one, or a racing load) cannot bring the value back.
    @discardableResult
    public func remove(_ key: String, options: CacheEntryOptions? = nil) async throws -> CacheVersion {
        try validate(key: key)
        let options = entryOptions(options)
        return try await mutate(.remove, key: key, options: options)
    }

    /// Marks a key stale on every node: no longer served as fresh, still available to fail-safe.
    @discardableResult
    public func expire(_ key: String, options: CacheEntryOptions? = nil) async throws -> CacheVersion {
        try validate(key: key)
        let options = entryOptions(options)
        return try await mutate(.expire, key: key, options: options)
    }

    /// Removes every entry carrying `tag`, on every node.
    @discardableResult
    public func removeByTag(_ tag: String, options: CacheEntryOptions? = nil) async throws -> CacheVersion {
        try validate(key: tag)
        return try await mutate(.removeTag, key: tag, options: entryOptions(options))
    }

    /// Clears the cache on every node: expires every entry (kept for fail-safe) when
    /// `allowFailSafe`, else removes every entry. Throws `writeQueueFull` only when L2 is
    /// unreachable and the queue of writes waiting for it is full.
    @discardableResult
    public func clear(allowFailSafe: Bool = true, options: CacheEntryOptions? = nil) async throws -> CacheVersion {
        try await mutate(allowFailSafe ? .clearExpire : .clearRemove, key: "", options: entryOptions(options))
    }

    /// The options a call runs with: those it was given, over the cache's defaults.
    func entryOptions(_ options: CacheEntryOptions?) -> CacheEntryOptions {
        guard let options else { return configuration.defaultEntryOptions }
        return options.applied(over: configuration.defaultEntryOptions)
    }

    // MARK: - Storing

    /// Encodes, installs in L1 and writes L2 + notification. Used by `set` and by factories.
    func store<Value: Codable & Sendable>(
        _ value: Value,
        key: String,
        version: CacheVersion,
        options: CacheEntryOptions,
        tags: [String],
        source: CacheValueSource,
        flight: Flight?
    ) async throws -> MemoryEntry {
        let writesDistributed = distributed != nil && !options.skipDistributedWrite
        var payload: [UInt8]?
        if writesDistributed || value is [UInt8] || value is String {
            let bytes = try codec.encode(value)
            guard bytes.count <= configuration.maxValueBytes else {
                throw CacheError(.valueTooLarge, "the value for '\(key)' is \(bytes.count) bytes; the limit is \(configuration.maxValueBytes)")
            }
            payload = bytes
        }
        let now = clock.now()
        let jitter = randomJitter(options.jitterMaxDuration)
        let memoryFreshness = options.effectiveMemoryDuration + jitter
        let logicalExpiry = Saturating.sum(clock.wallClockMilliseconds(), (options.effectiveDistributedDuration + jitter).millisecondsClamped)
        let distributedEntry = payload.map {
            DistributedEntry(version: version, logicalExpiryMilliseconds: logicalExpiry, tags: tags, payload: $0)
        }
        let mutation = CacheMutation(
            kind: .set, key: key, version: version,
            entry: writesDistributed ? distributedEntry : nil,
            timeToLive: distributedTimeToLive(options), instance: instanceID
        )
        // Room in the queue is held before L1 changes: a write the queue could not take is
        // refused whole. A fill from the origin is no client's write: it may be dropped instead.
        let reservation = try admit(mutation, options: options, writesDistributed: writesDistributed, isDroppable: flight != nil)
        let entry = MemoryEntry(
            value: value,
            version: version,
            node: nodeNames.intern(version.node),
            freshUntil: now + memoryFreshness,
            eagerRefreshAt: eagerRefreshInstant(options: options, start: now, freshness: memoryFreshness),
            tags: tags,
            isExpired: false,
            isFailSafeValue: false,
            allowsFailSafe: options.isFailSafeEnabled,
            failSafeCycles: 0,
            source: source
        )
        if !options.skipMemoryWrite {
            install(entry, key: key, options: options, now: now, flight: flight)
        }
        // A client's write is ordered by when Redis runs it; an origin fill keeps its version.
        let landed: CacheVersion
        do {
            landed = try await write(
                mutation, options: options, writesDistributed: writesDistributed, reservation: reservation,
                rebases: source != .factory, isFill: flight != nil
            )
        } catch {
            // The write reached no other node and will not: this node must not serve it either.
            memory.update(key, now: clock.now()) { $0.value.version == version ? .remove : .keep }
            throw error
        }
        guard landed != version else { return entry }
        var rebased = entry
        rebased.rebase(to: landed)
        return rebased
    }

    /// Applies a remove, expire, tag removal or clear locally, then writes and announces it.
    /// Throws `writeQueueFull` (before applying anything) when there is no room: an expire too,
    /// since an acknowledged invalidation that never reaches L2 is one other nodes never see.
    func mutate(_ kind: MutationKind, key: String, options: CacheEntryOptions, version fixedVersion: CacheVersion? = nil) async throws -> CacheVersion {
        let version = fixedVersion ?? versions.next()
        let mutation = CacheMutation(kind: kind, key: key, version: version, timeToLive: configuration.markerTimeToLive, instance: instanceID)
        let writesDistributed = distributed != nil && !options.skipDistributedWrite
        let reservation = try admit(mutation, options: options, writesDistributed: writesDistributed, isDroppable: false)
        fenceFlights(kind: kind, key: key, version: version)
        applyToMemory(kind: kind, key: key, version: version, now: clock.now())
        // A fixed version (the rollback's fence) was chosen against the history: it must stay.
        return try await write(
            mutation, options: options, writesDistributed: writesDistributed, reservation: reservation,
            rebases: fixedVersion == nil, isFill: false
        )
    }

    /// Holds room in the pending queue for a mutation about to be applied; nil when it goes
    /// nowhere beyond L1. Throws `writeQueueFull` when a write finds no room.
    private func admit(
        _ mutation: CacheMutation, options: CacheEntryOptions, writesDistributed: Bool, isDroppable: Bool
    ) throws -> PendingWrites.Reservation? {
        let notifies = backplane != nil && !options.skipBackplaneNotifications
        guard writesDistributed || notifies else { return nil }
        // L2 carries the notification when it is written: only the backplane-only case needs it.
        try requireRunning(distributed: writesDistributed, backplane: notifies && !writesDistributed)
        switch pending.admit(mutation, isDroppable: isDroppable) {
        case .admitted(let reservation, let dropped, let startsFullEpisode):
            for marker in dropped { noteDropped(marker) }
            if startsFullEpisode { warnQueueFull() }
            return reservation
        case .refused(let startsFullEpisode):
            if startsFullEpisode { warnQueueFull() }
            instrumentation.pendingWriteRefused(key: mutation.key)
            throw CacheError(
                .writeQueueFull,
                "L2 cannot take writes now and \(pending.count) writes are waiting for it (at most \(pending.capacity) writes, \(pending.maxBytes) bytes); nothing was applied, retry later"
            )
        }
    }

    private func noteDropped(_ mutation: CacheMutation) {
        instrumentation.pendingWriteDropped(key: mutation.key)
    }

    /// Once per full episode, not once per key: an invalidation of 10,000 keys logs one line.
    private func warnQueueFull() {
        instrumentation.pendingQueueFull(capacity: pending.capacity, maxBytes: pending.maxBytes)
    }

    /// Sends a mutation to L2 (or only to the backplane). While `run()` is active a failure never
    /// fails the call: the mutation is queued and flushed when Redis is back (auto-recovery).
    /// Without `run()` nothing would flush it, so the call fails with `distributedFailed` instead;
    /// a fill from the factory (`isFill`) is no client's write and is only given up. Returns the
    /// version it landed with: its own, or with `rebases` a later one (see `sendLive`).
    private func write(
        _ mutation: CacheMutation, options: CacheEntryOptions, writesDistributed: Bool, reservation: PendingWrites.Reservation?,
        rebases: Bool, isFill: Bool
    ) async throws -> CacheVersion {
        let notify = backplane != nil && !options.skipBackplaneNotifications
        let target: WriteTarget
        if writesDistributed {
            target = .distributed(publish: notify)
        } else if notify {
            target = .backplaneOnly
        } else {
            return mutation.version
        }
        guard let reservation else { return mutation.version }
        if options.allowBackgroundDistributedOperations, background.isRunning {
            enqueuePending(mutation, target: target, reservation: reservation)
            return mutation.version
        }
        do {
            let deadline = options.distributedHardTimeout.map { clock.now() + $0 }
            let outcome = try await withDeadline(deadline, clock: clock) {
                try await self.sendLive(mutation, to: target, rebases: rebases)
            }
            guard case .value(let landed) = outcome else {
                throw CacheError(.distributedTimeout, "L2 write of '\(mutation.key)' timed out")
            }
            pending.release(reservation)
            if landed != mutation.version { pending.recordLanding(slot: mutation.pendingSlot, version: landed) }
            noteDistributedReachable()
            return landed
        } catch {
            instrumentation.distributedWriteFailed(key: mutation.key, error: error)
            noteOutOfMemory(error, key: mutation.key)
            guard runActive.load(ordering: .relaxed) else {
                pending.release(reservation)
                if isFill { return mutation.version }
                throw CacheError(
                    .distributedFailed,
                    "the L2 write of '\(mutation.key)' failed and run() is not active to retry it: nothing was written",
                    underlying: error
                )
            }
            enqueuePending(mutation, target: target, reservation: reservation)
            return mutation.version
        }
    }

    /// Applies a client's mutation of a key as it is made (not a queued one). When L2 holds a
    /// newer version that this node had not seen, that version was written before this call
    /// reached Redis: by Redis's own order this mutation comes after it, and a version that says
    /// otherwise only shows that the other writer's clock ran ahead (hybrid clocks carry such a
    /// lead to every node that hears from it, for up to `maxClockDrift`). So the mutation takes
    /// a version after the stored one, in L1 as in L2, and is applied again, at most twice more.
    /// Queued mutations and origin fills keep their versions: their order is when they were
    /// acknowledged or loaded, and a newer stored version rightly wins.
    ///
    /// A clear or tag removal is ordered the same way against the highest set stored (see
    /// `CacheMutation.ordersAfterStoredSets`). When it is not rebased (the set is this node's
    /// own later one, or past the allowed drift), it is applied under its own version, as a
    /// queued one is: it must not be dropped.
    func sendLive(_ mutation: CacheMutation, to target: WriteTarget, rebases: Bool) async throws -> CacheVersion {
        guard rebases, case .distributed(let publish) = target, let distributed else {
            try await send(mutation, to: target)
            return mutation.version
        }
        var mutation = mutation
        mutation.ordersAfterStoredSets = !mutation.kind.isKeyed
        let mark = pending.readMark()
        for attempt in 0..<4 {
            let outcome = try await distributed.apply(mutation, publish: publish)
            guard case .superseded(let newer) = outcome, attempt < 2 || mutation.ordersAfterStoredSets else {
                handle(outcome, of: mutation)
                return mutation.version
            }
            guard attempt < 2, versions.observe(newer), !isSupersededByOwnLaterMutation(mutation, stored: newer, since: mark) else {
                if mutation.ordersAfterStoredSets {
                    mutation.ordersAfterStoredSets = false
                    continue
                }
                handle(outcome, of: mutation)
                return mutation.version
            }
            let rebased = versions.next()
            instrumentation.writeRebased(key: mutation.key, version: mutation.version, stored: newer, rebased: rebased)
            rebaseInMemory(mutation, to: rebased)
            mutation.version = rebased
            mutation.entry?.version = rebased
        }
        return mutation.version
    }

    /// Whether what superseded `mutation` in L2, or what will, is this node's own later
    /// mutation of the key: its own stored version, or one it made since `mark` that is still
    /// queued, in flight or just landed. A rebase would then put the older mutation after the
    /// later one and undo it, so the mutation is left superseded.
    ///
    /// A stored version in this node's name beyond the highest this run of the node has issued
    /// was not made by this run: an earlier run made it, with a clock that ran ahead (the node
    /// restarted after its wall clock was set back). That version is another writer's as far as
    /// ordering goes, and the live mutation is rebased after it like after any other. (Where
    /// the clock has got to says nothing here: it follows the highest stored version, the
    /// earlier run's included, from the first synchronization on.)
    ///
    /// For a clear or tag removal, which concerns every key, any later mutation of this node's
    /// counts.
    private func isSupersededByOwnLaterMutation(
        _ mutation: CacheMutation, stored: CacheVersion, since mark: UInt64
    ) -> Bool {
        if stored.node == nodeID, let issued = versions.highestIssued(), stored <= issued { return true }
        guard mutation.kind.isKeyed else { return pending.hasOwnMutation(newerThan: mutation.version, since: mark) }
        return pending.hasOwnMutation(newerThan: mutation.version, key: mutation.key, tags: mutation.entry?.tags ?? [], since: mark)
    }

    /// Moves a live mutation's effect in L1 to its rebased version: this node's written entry
    /// takes the new version; a remove or expire also covers what L1 holds up to it.
    private func rebaseInMemory(_ mutation: CacheMutation, to rebased: CacheVersion) {
        let now = clock.now()
        switch mutation.kind {
        case .set:
            memory.update(mutation.key, now: now) { item in
                if item.value.version == mutation.version { item.value.rebase(to: rebased) }
                return .keep
            }
        case .remove, .expire, .removeTag, .clearRemove, .clearExpire:
            fenceFlights(kind: mutation.kind, key: mutation.key, version: rebased)
            applyToMemory(kind: mutation.kind, key: mutation.key, version: rebased, now: now)
        }
    }

    /// Applies one mutation to its target and handles the outcome.
    func send(_ mutation: CacheMutation, to target: WriteTarget) async throws {
        switch target {
        case .distributed(let publish):
            guard let distributed else { return }
            handle(try await distributed.apply(mutation, publish: publish), of: mutation)
        case .backplaneOnly:
            guard let backplane else { return }
            _ = try await backplane.publish(mutation)
            instrumentation.published(key: mutation.key)
        }
    }

    /// Counts an applied mutation; for a superseded one, makes sure this node's older value
    /// does not stay fresh in L1.
    private func handle(_ outcome: MutationOutcome, of mutation: CacheMutation) {
        switch outcome {
        case .applied(let sequence):
            if sequence != nil { instrumentation.published(key: mutation.key) }
        case .superseded(let newer):
            // L2 holds a newer version: ours must not stay fresh in L1.
            versions.observe(newer)
            if mutation.kind == .set {
                let now = clock.now()
                memory.update(mutation.key, now: now) { item in
                    guard item.value.version == mutation.version else { return .keep }
                    if item.value.allowsFailSafe {
                        item.value.isExpired = true
                        return .keep
                    }
                    return .remove
                }
            }
            instrumentation.writeSuperseded(key: mutation.key, version: mutation.version, newer: newer)
        }
    }

    /// A write Redis refused because it is full stays queued (it lands once memory is freed),
    /// but never silently: each refusal is counted and logged as an error.
    func noteOutOfMemory(_ error: any Error, key: String) {
        guard let error = error as? CacheError, error.code == .distributedOutOfMemory else { return }
        instrumentation.distributedOutOfMemory(key: key, pending: pending.count, error: error)
    }

    private func enqueuePending(_ mutation: CacheMutation, target: WriteTarget, reservation: PendingWrites.Reservation) {
        switch pending.enqueue(mutation, target: target, reservation: reservation) {
        case .queued:
            instrumentation.pendingWriteQueued(key: mutation.key)
        case .superseded:
            break
        case .dropped(let startsFullEpisode):
            noteDropped(mutation)
            if startsFullEpisode { warnQueueFull() }
        }
    }

    func distributedTimeToLive(_ options: CacheEntryOptions) -> Duration {
        options.isFailSafeEnabled
            ? max(options.failSafeMaxDuration, options.effectiveDistributedDuration)
            : options.effectiveDistributedDuration
    }

    private func randomJitter(_ maximum: Duration) -> Duration {
        let nanos = maximum.nanosecondsClamped
        guard nanos > 0 else { return .zero }
        return .nanoseconds(Int64.random(in: 0...nanos))
    }

}
