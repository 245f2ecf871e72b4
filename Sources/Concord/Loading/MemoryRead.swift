/// One L1 read of a `getResult` or `getOrSet`: a fresh value ready to serve, or the entry found
/// (stale, or due for an eager refresh) for the rest of the call.
@usableFromInline
enum MemoryRead: Sendable {
    /// No entry, or L1 not read.
    case miss
    /// A fresh value, served.
    case hit(MemoryHit)
    /// An entry that may not be served as fresh (expired, past its freshness, or the node is
    /// cut off), kept for fail-safe and version checks.
    case stale(MemoryEntry)
    /// A fresh entry whose eager refresh is due (`getOrSet` only).
    case refreshDue(MemoryEntry)

    /// The entry found but not served, if any.
    var entry: MemoryEntry? {
        switch self {
        case .miss, .hit: nil
        case .stale(let entry), .refreshDue(let entry): entry
        }
    }
}
