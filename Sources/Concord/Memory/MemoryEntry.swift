/// What L1 holds per key: the decoded value and what coherence and fail-safe need to know.
///
/// Kept small because L1 stores one per entry (72 bytes, against 104 when it held a
/// `CacheVersion` and a `Bool` per flag): the version is stored flattened with its node id
/// interned as a shared `NodeName`, the flags and the source share one byte, and the tags,
/// which most entries do not have, share the node's 8 bytes (`Labels`). Stored properties are
/// declared largest first, since Swift lays them out in declaration order. At 72 bytes the
/// memory cache's slot (key, entry, metadata) is 136 bytes instead of 144.
///
/// `@usableFromInline` only because `MemoryRead`'s cases carry it; inlinable code never looks inside.
@usableFromInline
struct MemoryEntry: Sendable {
    var value: any Sendable
    private var versionMilliseconds: Int64
    private var labels: Labels
    /// Fresh until this instant (logical expiry, jitter included).
    var freshUntil: CacheInstant
    /// A hit at or after this instant starts a background refresh (`nanoseconds == .max`: never).
    var eagerRefreshAt: CacheInstant
    private var versionCounter: UInt32
    /// Consecutive fail-safe activations.
    var failSafeCycles: UInt16
    private var flags: Flags

    /// The writer's interned node id, and the tags when there are any: an untagged entry
    /// points at the shared `NodeName` alone; a tagged one at a `TaggedNodeName` of its own,
    /// which holds both. One reference either way (an enum of two class payloads is 8 bytes).
    private enum Labels: Sendable {
        case untagged(NodeName)
        case tagged(TaggedNodeName)

        init(node: NodeName, tags: [String]) {
            self = tags.isEmpty ? .untagged(node) : .tagged(TaggedNodeName(node: node, tags: tags))
        }

        var node: NodeName {
            switch self {
            case .untagged(let node): node
            case .tagged(let tagged): tagged.node
            }
        }

        var tags: [String] {
            switch self {
            case .untagged: []
            case .tagged(let tagged): tagged.tags
            }
        }
    }

    /// The tags this entry was written with; empty for most entries.
    var tags: [String] { labels.tags }

    /// `node` is `version.node` interned (see `NodeNameTable`); passed apart so that each
    /// entry of one node shares one object instead of holding a string of its own.
    init(
        value: any Sendable,
        version: CacheVersion,
        node: NodeName,
        freshUntil: CacheInstant,
        eagerRefreshAt: CacheInstant,
        tags: [String],
        isExpired: Bool,
        isFailSafeValue: Bool,
        allowsFailSafe: Bool,
        failSafeCycles: UInt16,
        source: CacheValueSource
    ) {
        assert(node.text == version.node, "the interned node must be the version's")
        self.value = value
        versionMilliseconds = version.milliseconds
        labels = Labels(node: node, tags: tags)
        self.freshUntil = freshUntil
        self.eagerRefreshAt = eagerRefreshAt
        versionCounter = version.counter
        self.failSafeCycles = failSafeCycles
        flags = Flags(source: source)
        self.isExpired = isExpired
        self.isFailSafeValue = isFailSafeValue
        self.allowsFailSafe = allowsFailSafe
    }

    /// The write's version, rebuilt from its stored parts (the node string is shared, not
    /// copied byte by byte).
    var version: CacheVersion {
        CacheVersion(milliseconds: versionMilliseconds, counter: versionCounter, node: labels.node.text)
    }

    /// Moves this node's own write to a later version of the same node (see
    /// `HybridCache.sendLive`).
    mutating func rebase(to version: CacheVersion) {
        assert(labels.node.text == version.node, "a rebase keeps the writer")
        versionMilliseconds = version.milliseconds
        versionCounter = version.counter
    }

    /// Expired by `expire`, by another node's write, or by a full expiry: kept only for fail-safe.
    var isExpired: Bool {
        get { flags.contains(Flags.isExpired) }
        set { flags.set(Flags.isExpired, newValue) }
    }

    /// Installed by a fail-safe activation: served, but flagged stale.
    var isFailSafeValue: Bool {
        get { flags.contains(Flags.isFailSafeValue) }
        set { flags.set(Flags.isFailSafeValue, newValue) }
    }

    /// Whether this entry may be served stale at all.
    var allowsFailSafe: Bool {
        get { flags.contains(Flags.allowsFailSafe) }
        set { flags.set(Flags.allowsFailSafe, newValue) }
    }

    /// Where the value came from when it entered L1.
    var source: CacheValueSource { flags.source }

    /// Three flags in the low bits, the source above them.
    private struct Flags: Sendable {
        static let isExpired: UInt8 = 1
        static let isFailSafeValue: UInt8 = 2
        static let allowsFailSafe: UInt8 = 4
        static let sourceShift: UInt8 = 3

        private var bits: UInt8

        init(source: CacheValueSource) {
            let code: UInt8 =
                switch source {
                case .memory: 0
                case .distributed: 1
                case .factory: 2
                }
            bits = code << Self.sourceShift
        }

        func contains(_ flag: UInt8) -> Bool { bits & flag != 0 }

        mutating func set(_ flag: UInt8, _ isOn: Bool) {
            if isOn { bits |= flag } else { bits &= ~flag }
        }

        var source: CacheValueSource {
            switch bits >> Self.sourceShift {
            case 0: .memory
            case 1: .distributed
            default: .factory
            }
        }
    }
}
