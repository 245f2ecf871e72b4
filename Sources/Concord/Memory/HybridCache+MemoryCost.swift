extension HybridCache {
    /// What an L1 entry costs beyond its key and payload, in bytes: the entry (80), its slot in
    /// the shard with the eviction links (144), the key's and the payload's heap headers, the
    /// index entry and the ghost queue's share, rounded up. Measured by the `memory` bench suite.
    public static let memoryEntryOverheadBytes = 320

    /// An entry's cost in L1: with `memoryMaxBytes`, its bytes (key, payload and the fixed
    /// overhead); otherwise its `size` option.
    func memoryCost(key: String, entry: MemoryEntry, options: CacheEntryOptions) -> Int {
        guard configuration.memoryMaxBytes != nil else { return options.size }
        let payload: Int
        switch entry.value {
        case let bytes as [UInt8]: payload = bytes.count
        case let text as String: payload = text.utf8.count
        default: payload = options.size
        }
        return Self.memoryEntryOverheadBytes + key.utf8.count + payload
    }
}
