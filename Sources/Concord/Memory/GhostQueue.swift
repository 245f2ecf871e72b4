/// Fingerprints of keys recently evicted from S3-FIFO's small queue, oldest first, with a
/// membership test: a key that comes back while its fingerprint is here skips the small queue.
///
/// Only 32-bit hashes are kept, never keys, so a ghost costs about 12 bytes (a ring slot plus
/// two table slots). Two keys sharing a fingerprint just make a false "seen before", which
/// costs a little hit ratio, never correctness.
@usableFromInline
struct GhostQueue: Sendable {
    /// Fingerprints in eviction order, as a ring that grows up to the current limit.
    private var ring: ContiguousArray<UInt32> = []
    private var oldest = 0
    private var count = 0
    /// Open-addressing multiset of the fingerprints in `ring` (0 marks an empty bucket; a
    /// fingerprint of 0 is stored as 1). Kept at most half full so probes stay short.
    private var buckets: ContiguousArray<UInt32> = []

    @usableFromInline
    init() {}

    @usableFromInline
    func contains(_ hash: UInt32) -> Bool {
        if buckets.isEmpty { return false }
        let fingerprint = Self.fingerprint(hash)
        let mask = buckets.count - 1
        var bucket = Int(fingerprint) & mask
        while true {
            let stored = buckets[bucket]
            if stored == 0 { return false }
            if stored == fingerprint { return true }
            bucket = (bucket + 1) & mask
        }
    }

    /// Records an eviction, first forgetting the oldest ones so that at most `limit` remain.
    @usableFromInline
    mutating func append(_ hash: UInt32, limit: Int) {
        let limit = max(1, limit)
        while count >= limit {
            removeOldest()
        }
        if count == ring.count {
            grow(toAtMost: limit)
        }
        var position = oldest + count
        if position >= ring.count { position -= ring.count }
        let fingerprint = Self.fingerprint(hash)
        ring[position] = fingerprint
        count += 1
        insertIntoBuckets(fingerprint)
    }

    @usableFromInline
    mutating func removeAll() {
        ring = []
        buckets = []
        oldest = 0
        count = 0
    }

    private static func fingerprint(_ hash: UInt32) -> UInt32 {
        hash == 0 ? 1 : hash
    }

    private mutating func removeOldest() {
        let fingerprint = ring[oldest]
        oldest += 1
        if oldest == ring.count { oldest = 0 }
        count -= 1
        removeFromBuckets(fingerprint)
    }

    private mutating func grow(toAtMost limit: Int) {
        let capacity = min(max(ring.count * 2, 16), limit)
        var newRing = ContiguousArray<UInt32>(repeating: 0, count: capacity)
        for offset in 0..<count {
            var position = oldest + offset
            if position >= ring.count { position -= ring.count }
            newRing[offset] = ring[position]
        }
        ring = newRing
        oldest = 0
        var bucketCount = 16
        while bucketCount < capacity * 2 { bucketCount <<= 1 }
        if bucketCount != buckets.count {
            buckets = ContiguousArray(repeating: 0, count: bucketCount)
            for offset in 0..<count {
                insertIntoBuckets(ring[offset])
            }
        }
    }

    private mutating func insertIntoBuckets(_ fingerprint: UInt32) {
        let mask = buckets.count - 1
        var bucket = Int(fingerprint) & mask
        while buckets[bucket] != 0 {
            bucket = (bucket + 1) & mask
        }
        buckets[bucket] = fingerprint
    }

    /// Removes one occurrence, shifting later members of the probe run back so that lookups
    /// never need tombstones.
    private mutating func removeFromBuckets(_ fingerprint: UInt32) {
        let mask = buckets.count - 1
        var hole = Int(fingerprint) & mask
        while buckets[hole] != fingerprint {
            hole = (hole + 1) & mask
        }
        var probe = hole
        while true {
            probe = (probe + 1) & mask
            let stored = buckets[probe]
            if stored == 0 { break }
            let home = Int(stored) & mask
            // Move `stored` into the hole unless its home lies cyclically in (hole, probe].
            let distanceToProbe = (probe - home) & mask
            let distanceToHole = (probe - hole) & mask
            if distanceToProbe >= distanceToHole {
                buckets[hole] = stored
                hole = probe
            }
        }
        buckets[hole] = 0
    }
}
