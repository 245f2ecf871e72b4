/// The writer's node id and the tags of one tagged L1 entry, held together so that
/// `MemoryEntry` spends one reference on both (see `MemoryEntry.Labels`).
final class TaggedNodeName: Sendable {
    let node: NodeName
    let tags: [String]

    init(node: NodeName, tags: [String]) {
        self.node = node
        self.tags = tags
    }
}
