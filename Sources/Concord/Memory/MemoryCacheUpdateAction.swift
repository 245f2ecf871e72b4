/// What an `update` closure wants done with the item it was given.
public enum MemoryCacheUpdateAction: Hashable, Sendable {
    /// Keep the item, with whatever changes the closure made, at its eviction position.
    case keep
    /// Remove the item; the removal listener sees `.explicit`.
    case remove
}
