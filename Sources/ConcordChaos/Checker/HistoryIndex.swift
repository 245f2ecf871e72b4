/// Lookup tables over a history, built once, that answer the checker's and the timeline's
/// questions ("latest version acked before t", "when was version v first superseded") in
/// logarithmic time, so ~100k operations check in well under a second.
struct HistoryIndex: Sendable {
    /// An acknowledged mutation, in nanoseconds for cheap comparisons.
    struct Ack: Sendable {
        var end: Int64
        var version: Int64
        /// Index into `operations`.
        var index: Int
        /// From when a read outside the reader's fault windows must return this version or
        /// newer (C3): the ack + Δ, or for a write the fault hid, the heal + convergence bound.
        var healthyDeadline: Int64 = 0
    }

    struct NodeKey: Hashable, Sendable {
        var node: String
        var key: String
    }

    /// One key's acknowledged versions, sorted three ways.
    struct KeyTimeline: Sendable {
        /// Sorted by ack time.
        var byEnd: [Ack] = []
        /// `byEnd` index of the highest version among `byEnd[0...i]`.
        var bestUpTo: [Int] = []
        /// Sorted by version.
        var byVersion: [Ack] = []
        /// `byVersion` index of the earliest ack among `byVersion[i...]`.
        var earliestFrom: [Int] = []
        /// Sorted by `healthyDeadline`.
        var byDeadline: [Ack] = []
        /// `byDeadline` index of the highest version among `byDeadline[0...i]`.
        var bestDeadlineUpTo: [Int] = []
        /// Distinct acked versions, ascending.
        var versions: [Int64] = []
        /// Indices into `operations` of every operation on the key, by start.
        var operations: [Int] = []
    }

    let history: History
    let operations: [Operation]
    let keys: [String: KeyTimeline]
    /// Successful reads per node and key, by start (indices into `operations`).
    let reads: [NodeKey: [Int]]
    /// The keys of `reads` in a fixed order, so results do not depend on hashing.
    let readPairs: [NodeKey]
    /// Acknowledged mutations per node and key (a node's own writes, for C1).
    let ownAcks: [NodeKey: KeyTimeline]
    /// Per node, the windows [start, heal + convergence bound] of the faults that touched it
    /// (a fault on Redis touches every node), merged, in nanoseconds.
    let faultWindowsByNode: [String: [(start: Int64, end: Int64)]]
    let nodes: [String]
    /// Mutations acknowledged by a node while a fault touched it (a partition of its link, or
    /// Redis itself down, hung or wiped) or while it may still have been reconnecting after the
    /// heal (the backoff cap), and background writes acknowledged less than Δ before such a
    /// fault began, by index into `operations`: the heal, and the nodes
    /// the fault touched. Such a write may have been queued by its node (auto-recovery); it
    /// reaches Redis, and so other nodes, only when that node flushes after the heal.
    let hiddenWrites: [Int: (until: Int64, cutOff: Set<String>)]
    /// Background writes whose node was killed within the convergence bound of the ack: the
    /// write may have died with the node before reaching L2, as `?background=true` allows.
    /// They are not counted as acknowledged (indices into `operations`).
    let excusedBackgroundWrites: Set<Int>

    init(_ history: History, bounds: ContractBounds, windowScope: FaultWindowScope = .perNode) {
        self.history = history
        let operations = history.operations.sorted { ($0.start, $0.id) < ($1.start, $1.id) }
        self.operations = operations
        self.nodes = history.allNodes
        let bound = bounds.convergenceBound.nanosecondsValue
        let delta = bounds.delta.nanosecondsValue
        let historyEnd = history.end.nanosecondsValue
        let reconnecting = max(0, bound - delta)

        var byNode: [String: [(start: Int64, end: Int64)]] = [:]
        for node in nodes {
            let windows = history.faults
                .filter { windowScope == .clusterWide || $0.affectsAllNodes || $0.targets.contains(node) }
                .map { (start: $0.start.nanosecondsValue, end: ($0.heal?.nanosecondsValue ?? max(historyEnd, $0.start.nanosecondsValue)) + bound) }
            byNode[node] = Self.merged(windows)
        }
        self.faultWindowsByNode = byNode

        let allNodes = Set(nodes)
        var hidden: [Int: (until: Int64, cutOff: Set<String>)] = [:]
        var excused = Set<Int>()
        if !history.faults.isEmpty {
            for (index, operation) in operations.enumerated() where operation.kind.isMutation && operation.outcome.isOK {
                let ack = operation.end.nanosecondsValue
                for fault in history.faults where fault.affectsAllNodes || fault.targets.contains(operation.node) {
                    let faultStart = fault.start.nanosecondsValue
                    if operation.background, fault.kind == Self.nodeKillKind, ack <= faultStart, faultStart <= ack + bound {
                        excused.insert(index)
                    }
                    let heal = fault.heal?.nanosecondsValue ?? historyEnd
                    // A background write is acknowledged before its L2 write: a fault on its
                    // node that starts within Δ of the ack can catch it still on the node, which
                    // then queues it until the heal, as one acknowledged during the fault.
                    let caughtBeforeL2 = operation.background && ack <= faultStart && faultStart <= ack + delta
                    // After the heal its node may still be reconnecting, for up to the backoff
                    // cap (the convergence bound less Δ): a write it acknowledges then is queued
                    // as during the fault, and C5 bounds it from the heal as well.
                    guard faultStart <= ack || caughtBeforeL2, ack <= heal + reconnecting else { continue }
                    let touched = fault.affectsAllNodes ? allNodes : Set(fault.targets)
                    let until = max(heal, hidden[index]?.until ?? heal)
                    hidden[index] = (until, touched.union(hidden[index]?.cutOff ?? []))
                }
            }
        }
        self.hiddenWrites = hidden
        self.excusedBackgroundWrites = excused

        var acks: [String: [Ack]] = [:]
        var own: [NodeKey: [Ack]] = [:]
        var byKey: [String: [Int]] = [:]
        var reads: [NodeKey: [Int]] = [:]
        var clears: [(ack: Ack, node: String)] = []
        for (index, operation) in operations.enumerated() {
            if operation.kind.isMutation, let version = operation.outcome.version, !excused.contains(index) {
                let end = operation.end.nanosecondsValue
                let deadline = hidden[index].map { max(end + delta, $0.until + bound) } ?? end + delta
                let ack = Ack(end: end, version: version, index: index, healthyDeadline: deadline)
                if operation.kind == .clear {
                    clears.append((ack, operation.node))
                    continue
                }
                acks[operation.key, default: []].append(ack)
                own[NodeKey(node: operation.node, key: operation.key), default: []].append(ack)
            } else if operation.kind == .read, operation.outcome.isOK {
                reads[NodeKey(node: operation.node, key: operation.key), default: []].append(index)
            }
            if operation.kind != .clear { byKey[operation.key, default: []].append(index) }
        }
        // A clear supersedes every key at once.
        for (ack, node) in clears {
            for key in byKey.keys {
                acks[key, default: []].append(ack)
                own[NodeKey(node: node, key: key), default: []].append(ack)
            }
        }
        var keys: [String: KeyTimeline] = [:]
        for (key, indices) in byKey {
            var timeline = Self.timeline(acks[key] ?? [])
            timeline.operations = indices
            keys[key] = timeline
        }
        self.keys = keys
        self.reads = reads
        self.readPairs = reads.keys.sorted { ($0.node, $0.key) < ($1.node, $1.key) }
        self.ownAcks = own.mapValues { Self.timeline($0) }
    }

    /// The fault kind whose start can take an unflushed background write with it.
    static let nodeKillKind = "node-kill"

    private static func merged(_ windows: [(start: Int64, end: Int64)]) -> [(start: Int64, end: Int64)] {
        var merged: [(start: Int64, end: Int64)] = []
        for window in windows.sorted(by: { $0.start < $1.start }) {
            if let last = merged.last, window.start <= last.end {
                merged[merged.count - 1].end = max(last.end, window.end)
            } else {
                merged.append(window)
            }
        }
        return merged
    }

    private static func timeline(_ acks: [Ack]) -> KeyTimeline {
        var timeline = KeyTimeline()
        timeline.byEnd = acks.sorted { ($0.end, $0.version) < ($1.end, $1.version) }
        var best = -1
        for (index, ack) in timeline.byEnd.enumerated() {
            if best < 0 || ack.version > timeline.byEnd[best].version { best = index }
            timeline.bestUpTo.append(best)
        }
        timeline.byVersion = acks.sorted { ($0.version, $0.end) < ($1.version, $1.end) }
        timeline.earliestFrom = Array(repeating: 0, count: timeline.byVersion.count)
        var earliest = -1
        for index in timeline.byVersion.indices.reversed() {
            if earliest < 0 || timeline.byVersion[index].end < timeline.byVersion[earliest].end { earliest = index }
            timeline.earliestFrom[index] = earliest
        }
        timeline.byDeadline = acks.sorted { ($0.healthyDeadline, $0.version) < ($1.healthyDeadline, $1.version) }
        var bestDeadline = -1
        for (index, ack) in timeline.byDeadline.enumerated() {
            if bestDeadline < 0 || ack.version > timeline.byDeadline[bestDeadline].version { bestDeadline = index }
            timeline.bestDeadlineUpTo.append(bestDeadline)
        }
        var versions: [Int64] = []
        for ack in timeline.byVersion where versions.last != ack.version { versions.append(ack.version) }
        timeline.versions = versions
        return timeline
    }

    // MARK: Queries

    /// The highest version acknowledged strictly before `time` (or at it, when `inclusive`).
    static func latest(in timeline: KeyTimeline?, before time: Int64, inclusive: Bool = false) -> Ack? {
        guard let timeline, !timeline.byEnd.isEmpty else { return nil }
        let count = partitionPoint(timeline.byEnd) { inclusive ? $0.end <= time : $0.end < time }
        guard count > 0 else { return nil }
        return timeline.byEnd[timeline.bestUpTo[count - 1]]
    }

    func latestAcked(_ key: String, before time: Int64, inclusive: Bool = false) -> Ack? {
        Self.latest(in: keys[key], before: time, inclusive: inclusive)
    }

    /// When a read on `reader` starting at `time` owes the acknowledged write. From its ack as a
    /// rule. A write acknowledged during a fault that touched its node is owed from the heal to
    /// the nodes the fault left connected (they rightly trust their L1 and cannot see a queued
    /// write) and, after the heal, to every node: from then on it is convergence (C5), bounded
    /// from the heal. Nodes cut off with the writer still owe it from the ack while the fault
    /// lasts: after maxDisconnectedStaleness they must ask the origin, which has it.
    func owedFrom(_ ack: Ack, reader: String, at time: Int64) -> Int64 {
        guard let hidden = hiddenWrites[ack.index] else { return ack.end }
        if hidden.cutOff.contains(reader) && time < hidden.until { return ack.end }
        return max(ack.end, hidden.until)
    }

    /// Among the writes of versions above `rank`, the one a read on `reader` at `time` owed
    /// first, and since when: the moment `rank` became outdated for that read.
    func firstOwedSuperseding(_ key: String, above rank: Int64, reader: String, at time: Int64) -> (ack: Ack, owedFrom: Int64)? {
        guard let timeline = keys[key] else { return nil }
        let first = Self.partitionPoint(timeline.byVersion) { $0.version <= rank }
        guard first < timeline.byVersion.count else { return nil }
        if hiddenWrites.isEmpty {
            let ack = timeline.byVersion[timeline.earliestFrom[first]]
            return (ack, ack.end)
        }
        var best: (ack: Ack, owedFrom: Int64)?
        for ack in timeline.byVersion[first...] {
            let owed = owedFrom(ack, reader: reader, at: time)
            if best == nil || owed < best!.owedFrom { best = (ack, owed) }
        }
        return best
    }

    /// The highest version a read outside the reader's fault windows, starting at `time`, must
    /// return at least (C3): among acks whose healthy deadline has passed.
    func healthyFloor(_ key: String, at time: Int64) -> Ack? {
        guard let timeline = keys[key], !timeline.byDeadline.isEmpty else { return nil }
        let count = Self.partitionPoint(timeline.byDeadline) { $0.healthyDeadline <= time }
        guard count > 0 else { return nil }
        return timeline.byDeadline[timeline.bestDeadlineUpTo[count - 1]]
    }

    /// How many acknowledged versions a read returning `rank` at `time` is behind.
    func versionsBehind(_ key: String, rank: Int64, at time: Int64) -> Int {
        guard let timeline = keys[key], let latest = latestAcked(key, before: time) else { return 0 }
        guard latest.version > rank else { return 0 }
        let above = Self.partitionPoint(timeline.versions) { $0 <= rank }
        let upTo = Self.partitionPoint(timeline.versions) { $0 <= latest.version }
        return max(0, upTo - above)
    }

    /// Whether [start, end] touches a window of a fault that touched `node`.
    func overlapsFault(node: String, start: Int64, end: Int64) -> Bool {
        guard let windows = faultWindowsByNode[node] else { return false }
        // Windows are disjoint and sorted: only the last one starting at or before `end` can overlap.
        let count = Self.partitionPoint(windows) { $0.start <= end }
        guard count > 0 else { return false }
        return windows[count - 1].end >= start
    }

    /// Operations on the operation's key around it, plus `including`, ordered by start.
    func window(around index: Int, radius: Int, including: [Int] = []) -> [Operation] {
        let operation = operations[index]
        guard let onKey = keys[operation.key]?.operations,
            let position = onKey.firstIndex(of: index)
        else { return [operation] }
        let lower = max(0, position - radius)
        let upper = min(onKey.count - 1, position + max(1, radius / 2))
        var chosen = Set(onKey[lower...upper])
        chosen.formUnion(including)
        return chosen.sorted().map { operations[$0] }
    }

    /// The number of leading elements satisfying `predicate` (which must be true then false).
    static func partitionPoint<T>(_ array: [T], _ predicate: (T) -> Bool) -> Int {
        var low = 0
        var high = array.count
        while low < high {
            let middle = (low + high) / 2
            if predicate(array[middle]) { low = middle + 1 } else { high = middle }
        }
        return low
    }
}
