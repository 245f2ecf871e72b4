// W-TinyLFU (Einziger, Friedman and Manes, 2017, as Caffeine runs it), per shard, with queues
// that do not move on a hit.
//
// New keys enter a small window. Behind it, the main space is segmented: a probation queue
// for keys admitted but not used since, and a protected queue (80% of the main space) for keys
// used again. Between the two spaces sits TinyLFU admission: when the window is over its
// share, its oldest key is a candidate, and once the main space is full it replaces
// probation's oldest key only when the frequency sketch estimates it clearly more popular;
// the loser leaves. So one-hit keys (scans, long tails) churn the window only, a hot set
// survives scans, and a loop over more keys than fit keeps a fixed part of the loop instead of
// evicting each key just before it comes back.
//
// A hit only bumps a byte in the entry; nothing moves and no shared structure is written, so
// the hit path costs what a locked lookup costs. The policy acts on the bumps when it next
// looks at the entry, as CLOCK does: an entry at a queue's tail that was hit since it got
// there has its hits added to the sketch and moves on (to the window's head, from probation
// to protected, or to protected's head) instead of being chosen. That is where LRU would have
// put it, approximately, and the sketch ends up with the same counts as if every hit had been
// recorded at once, up to a counter's cap.

extension MemoryCacheShard {
    /// The window's share of the space, in percent.
    @inlinable
    static var initialWindowPercent: Int { 1 }

    @inlinable
    static func share(_ percent: Int, of limit: Int) -> Int {
        max(1, Int((Double(limit) * Double(percent) / 100).rounded()))
    }

    /// How much more popular than the victim a candidate must be estimated to replace it.
    /// Caffeine admits on any lead; a lead of one is often an artefact of timing (the candidate
    /// was just counted, the victim's next use is still to come), and demanding two keeps a
    /// loop's resident part from churning while popular keys still get in.
    @inlinable
    static var admissionMargin: Int { 1 }

    /// The protected queue's share of the main space: 80%, by count.
    @inlinable
    var protectedEntryTarget: Int {
        (entryLimit - windowEntryTarget) * 4 / 5
    }

    /// Frees one entry, preferring expired ones met on the way. Returns false when the shard is
    /// empty. Each pass over an entry clears its hits, so the loops end.
    @inlinable
    mutating func evictOne(now: Int64, removals: inout RemovalBuffer<Key, Value>) -> Bool {
        while window.count > 0
            && (window.count >= windowEntryTarget || window.cost >= windowCostTarget || probation.count + protected.count == 0)
        {
            let candidate = Int(window.tail)
            let entry = slots[candidate].meta
            if Self.isExpired(entry, now: now) {
                removeEntry(at: candidate, cause: .expired, removals: &removals)
                return true
            }
            if entry.frequency > 0, window.count > 1 {
                recordHits(at: candidate)
                move(candidate, to: .window)
                continue
            }
            recordHits(at: candidate)
            let mainCount = probation.count + protected.count
            let mainCost = probation.cost + protected.cost
            if mainCount < entryLimit - windowEntryTarget && mainCost + entry.cost <= costLimit - windowCostTarget {
                move(candidate, to: .probation)
                continue
            }
            switch mainVictim(now: now, removals: &removals) {
            case .freed:
                return true
            case .empty:
                move(candidate, to: .probation)
                continue
            case .victim(let victim):
                if sketch.estimate(entry.hash) > sketch.estimate(slots[victim].meta.hash) + Self.admissionMargin {
                    // Removing the victim moves the last slot into its place, which may be the
                    // candidate's.
                    let moved = candidate == slots.count - 1
                    removeEntry(at: victim, cause: .evicted, removals: &removals)
                    move(moved ? victim : candidate, to: .probation)
                } else {
                    removeEntry(at: candidate, cause: .evicted, removals: &removals)
                }
                return true
            }
        }
        switch mainVictim(now: now, removals: &removals) {
        case .freed:
            return true
        case .empty:
            return false
        case .victim(let victim):
            removeEntry(at: victim, cause: .evicted, removals: &removals)
            return true
        }
    }

    /// What the main space offers for eviction.
    @usableFromInline
    enum MainTail {
        /// The entry at this position: probation's oldest not hit since it got there.
        case victim(Int)
        /// An expired entry met on the way was removed.
        case freed
        case empty
    }

    /// Finds the main space's victim: keeps protected within its share (its oldest entries go
    /// back to probation unless hit since they got there), and promotes entries at probation's
    /// tail that were hit, until that tail holds one that was not.
    @inlinable
    mutating func mainVictim(now: Int64, removals: inout RemovalBuffer<Key, Value>) -> MainTail {
        while true {
            while protected.count > protectedEntryTarget, protected.tail >= 0 {
                let position = Int(protected.tail)
                let hit = slots[position].meta.frequency > 0
                recordHits(at: position)
                move(position, to: hit ? .protected : .probation)
            }
            let queue: QueueID
            if probation.tail >= 0 {
                queue = .probation
            } else if protected.tail >= 0 {
                queue = .protected
            } else {
                return .empty
            }
            let position = Int(self[queue: queue].tail)
            let entry = slots[position].meta
            if Self.isExpired(entry, now: now) {
                removeEntry(at: position, cause: .expired, removals: &removals)
                return .freed
            }
            if entry.frequency == 0 {
                return .victim(position)
            }
            recordHits(at: position)
            move(position, to: .protected)
        }
    }

    /// Adds the entry's hits since the policy last looked at it to the sketch, and clears them.
    @inlinable
    mutating func recordHits(at position: Int) {
        let hits = slots[position].meta.frequency
        if hits > 0 {
            slots[position].meta.frequency = 0
            addToSketch(slots[position].meta.hash, times: Int(hits))
        }
    }

    /// Counts uses in the sketch, aging it first when its sample is complete. Before the
    /// counters are halved, the hits every entry holds back go in, so that aging weighs them
    /// like the uses the sketch already has (one is kept back, as the mark that the entry was
    /// hit since the policy last looked). That is one pass over the shard per
    /// `FrequencySketch.samplePerWord` additions per entry.
    @inlinable
    mutating func addToSketch(_ hash: UInt32, times: Int) {
        if sketch.isAgingDue {
            for position in slots.indices where slots[position].meta.frequency > 1 {
                sketch.add(slots[position].meta.hash, times: Int(slots[position].meta.frequency) - 1, counted: false)
                slots[position].meta.frequency = 1
            }
            sketch.age()
        }
        sketch.add(hash, times: times)
    }

    /// Moves an entry to the head of `queue`.
    @inlinable
    mutating func move(_ position: Int, to queue: QueueID) {
        detach(position)
        attachAtHead(position, of: queue)
    }

    /// Takes the entry out of its queue; it keeps its `queue` tag so it can be put back.
    @inlinable
    mutating func detach(_ position: Int) {
        let entry = slots[position].meta
        let index = Int32(position)
        if entry.newer >= 0 {
            slots[Int(entry.newer)].meta.older = entry.older
        }
        if entry.older >= 0 {
            slots[Int(entry.older)].meta.newer = entry.newer
        }
        var list = self[queue: entry.queue]
        if list.head == index { list.head = entry.older }
        if list.tail == index { list.tail = entry.newer }
        list.count -= 1
        list.cost -= entry.cost
        self[queue: entry.queue] = list
        slots[position].meta.newer = -1
        slots[position].meta.older = -1
    }

    @inlinable
    mutating func attachAtHead(_ position: Int, of queue: QueueID) {
        let index = Int32(position)
        slots[position].meta.queue = queue
        slots[position].meta.newer = -1
        let cost = slots[position].meta.cost
        var list = self[queue: queue]
        slots[position].meta.older = list.head
        if list.head >= 0 {
            slots[Int(list.head)].meta.newer = index
        } else {
            list.tail = index
        }
        list.head = index
        list.count += 1
        list.cost += cost
        self[queue: queue] = list
    }
}
