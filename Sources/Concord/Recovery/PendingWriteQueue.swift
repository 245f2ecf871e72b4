/// The state of the pending-write queue as a plain value: the newest mutation per slot, in two
/// insertion-ordered lists (writes, and droppable mutations, which give way first), bounded in
/// entries and bytes together with the room reserved by writes in flight. Droppable are origin
/// fills: no client wrote them, so they never push a client's write out.
///
/// Every operation but `batch`, `hasVersion(newerThan:)` and `removeAll(where:)` costs O(1) whatever the queue holds: each list is doubly linked
/// through indices into one node array, with freed nodes reused, and a dictionary finds a
/// slot's node.
struct PendingWriteQueue {
    struct Item {
        var mutation: CacheMutation
        var target: WriteTarget
        var bytes: Int
        var isDroppable: Bool
    }

    private struct Node {
        var slot: String
        var item: Item?
        var previous = -1
        var next = -1
        var isMarker = false
    }

    private struct List {
        var head = -1
        var tail = -1
        var count = 0
    }

    let capacity: Int
    let maxBytes: Int
    private var nodes: [Node] = []
    private var free: [Int] = []
    private var index: [String: Int] = [:]
    private var writes = List()
    private var markers = List()
    private(set) var bytes = 0
    private(set) var reservedEntries = 0
    private(set) var reservedBytes = 0

    init(capacity: Int, maxBytes: Int) {
        self.capacity = max(1, capacity)
        self.maxBytes = max(1, maxBytes)
    }

    var count: Int { index.count }

    /// What a mutation weighs against `maxBytes`: its key and its entry's payload.
    static func weight(of mutation: CacheMutation) -> Int {
        mutation.key.utf8.count + (mutation.entry?.payload.count ?? 0)
    }

    private func hasRoom(for bytes: Int) -> Bool {
        count + reservedEntries < capacity && self.bytes + reservedBytes + bytes <= maxBytes
    }

    // MARK: Reservations

    /// Reserves room for a write about to be tried, making room by dropping the oldest queued
    /// droppable mutations if needed. Returns the markers dropped, or nil when even then there is no
    /// room: the write must be refused before anything of it is applied.
    mutating func reserve(bytes: Int) -> [CacheMutation]? {
        var dropped: [CacheMutation] = []
        while !hasRoom(for: bytes), markers.head >= 0 {
            if let removed = remove(at: markers.head) { dropped.append(removed.mutation) }
        }
        guard hasRoom(for: bytes) else { return nil }
        reservedEntries += 1
        reservedBytes += bytes
        return dropped
    }

    /// Reserves room for a droppable mutation if there is some; it never pushes anything out.
    mutating func reserveIfRoom(bytes: Int) -> Bool {
        guard hasRoom(for: bytes) else { return false }
        reservedEntries += 1
        reservedBytes += bytes
        return true
    }

    mutating func release(bytes: Int) {
        reservedEntries -= 1
        reservedBytes -= bytes
    }

    // MARK: Queue

    /// What `insert` did.
    enum Insertion: Equatable {
        case queued
        /// A newer mutation for the slot is queued already.
        case superseded
        /// A droppable mutation with no room, or one for a key whose queued write must not be
        /// replaced (a client's write is kept over it: it was acknowledged).
        case dropped
    }

    /// Queues `item` in its slot. The caller has released any reservation first; a write
    /// (`reserved`) always fits, since its room was held for it.
    mutating func insert(_ item: Item, reserved: Bool) -> Insertion {
        let slot = item.mutation.pendingSlot
        let isMarker = item.isDroppable
        if let position = index[slot], let existing = nodes[position].item {
            guard existing.mutation.version < item.mutation.version else { return .superseded }
            if isMarker, !nodes[position].isMarker { return .dropped }
            remove(at: position)
            append(slot: slot, item: item, isMarker: isMarker)
            return .queued
        }
        if !reserved, !hasRoom(for: item.bytes) { return .dropped }
        append(slot: slot, item: item, isMarker: isMarker)
        return .queued
    }

    /// Up to `limit` queued mutations, writes first, each list oldest first: O(limit).
    func batch(limit: Int) -> [Item] {
        var result: [Item] = []
        result.reserveCapacity(min(limit, count))
        for list in [writes, markers] {
            var position = list.head
            while position >= 0, result.count < limit {
                if let item = nodes[position].item { result.append(item) }
                position = nodes[position].next
            }
        }
        return result
    }

    /// Removes the slot's mutation if it is still this version; true when it was.
    mutating func remove(ifVersion version: CacheVersion, slot: String) -> Bool {
        guard let position = index[slot], nodes[position].item?.mutation.version == version else { return false }
        remove(at: position)
        return true
    }

    func version(ofSlot slot: String) -> CacheVersion? {
        index[slot].flatMap { nodes[$0].item?.mutation.version }
    }

    /// Whether any queued mutation is newer than `version`: a scan of the whole queue, asked
    /// only when a live clear or tag removal was superseded in L2.
    func hasVersion(newerThan version: CacheVersion) -> Bool {
        index.values.contains { nodes[$0].item.map { $0.mutation.version > version } ?? false }
    }

    /// Removes every queued mutation `isSuperseded` selects: a scan of the whole queue, made
    /// once per clear or tag removal. Returns how many went.
    mutating func removeAll(where isSuperseded: (CacheMutation) -> Bool) -> Int {
        let positions = index.values.filter { nodes[$0].item.map { isSuperseded($0.mutation) } ?? false }
        for position in positions { remove(at: position) }
        return positions.count
    }

    /// The version queued in the slot when it is a client's write (not a droppable origin fill).
    func writeVersion(ofSlot slot: String) -> CacheVersion? {
        index[slot].flatMap { nodes[$0].item }.flatMap { $0.isDroppable ? nil : $0.mutation.version }
    }

    // MARK: Linked lists

    private mutating func append(slot: String, item: Item, isMarker: Bool) {
        let node = Node(slot: slot, item: item, previous: isMarker ? markers.tail : writes.tail, next: -1, isMarker: isMarker)
        let position: Int
        if let reused = free.popLast() {
            nodes[reused] = node
            position = reused
        } else {
            nodes.append(node)
            position = nodes.count - 1
        }
        if isMarker {
            if markers.tail >= 0 { nodes[markers.tail].next = position } else { markers.head = position }
            markers.tail = position
            markers.count += 1
        } else {
            if writes.tail >= 0 { nodes[writes.tail].next = position } else { writes.head = position }
            writes.tail = position
            writes.count += 1
        }
        index[slot] = position
        bytes += item.bytes
    }

    @discardableResult
    private mutating func remove(at position: Int) -> Item? {
        let node = nodes[position]
        if node.previous >= 0 { nodes[node.previous].next = node.next }
        if node.next >= 0 { nodes[node.next].previous = node.previous }
        if node.isMarker {
            if markers.head == position { markers.head = node.next }
            if markers.tail == position { markers.tail = node.previous }
            markers.count -= 1
        } else {
            if writes.head == position { writes.head = node.next }
            if writes.tail == position { writes.tail = node.previous }
            writes.count -= 1
        }
        index[node.slot] = nil
        bytes -= node.item?.bytes ?? 0
        nodes[position] = Node(slot: "", item: nil)
        free.append(position)
        return node.item
    }
}
