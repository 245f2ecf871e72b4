/// What L1 holds per key: the decoded value and what coherence and fail-safe need to know.
///
/// Kept small because L1 stores one per entry (80 bytes, against 104 when it held a
/// `CacheVersion` and a `Bool` per flag): the version is stored flattened with its node id
/// interned as a shared `NodeName` (8 bytes instead of a 16-byte `String`, and no padding
/// after the counter), and the flags and the source share one byte. Stored properties are
/// declared largest first, since Swift lays them out in declaration order.
///
/// `@usableFromInline` only because `MemoryRead`'s cases carry it; inlinable code never looks inside.
@usableFromInline
struct MemoryEntry: Sendable {
    var value: any Sendable
    private var versionMilliseconds: Int64
    private var versionNode: NodeName
    /// Fresh until this instant (logical expiry, jitter included).
    var freshUntil: CacheInstant
    /// A hit at or after this instant starts a background refresh (`nanoseconds == .max`: never).
    var eagerRefreshAt: CacheInstant
    var tags: [String]
    private var versionCounter: UInt32
    /// Consecutive fail-safe activations.
    var failSafeCycles: UInt16
    private var flags: Flags

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
        versionNode = node
        self.freshUntil = freshUntil
        self.eagerRefreshAt = eagerRefreshAt
        self.tags = tags
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
        CacheVersion(milliseconds: versionMilliseconds, counter: versionCounter, node: versionNode.text)
    }

    /// Moves this node's own write to a later version of the same node (see
    /// `HybridCache.sendLive`).
    mutating func rebase(to version: CacheVersion) {
        assert(versionNode.text == version.node, "a rebase keeps the writer")
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

/// A node id shared by the L1 entries whose versions that node made.
final class NodeName: Sendable {
    let text: String

    init(_ text: String) {
        self.text = text
    }
}

/// Interns node ids for L1 entries: this node's own id, and a bounded set of others (a
/// cluster has few nodes, but ids that change on every restart must not grow the table
/// without end; past the bound, an entry gets a `NodeName` of its own, as correct, only larger).
final class NodeNameTable: Sendable {
    let own: NodeName
    private let others = Mutex<[String: NodeName]>([:])
    static let maxOthers = 1024

    init(own: String) {
        self.own = NodeName(own)
    }

    /// The shared `NodeName` for `node`.
    func intern(_ node: String) -> NodeName {
        if node == own.text { return own }
        return others.withLock { others in
            if let name = others[node] { return name }
            let name = NodeName(node)
            if others.count < Self.maxOthers { others[node] = name }
            return name
        }
    }
}

/// A value with where it came from, its version, and whether it is stale (served by fail-safe).
public struct CacheResult<Value: Sendable>: Sendable {
    public var value: Value
    public var source: CacheValueSource
    public var isStale: Bool
    public var version: CacheVersion

    public init(value: Value, source: CacheValueSource, isStale: Bool, version: CacheVersion) {
        self.value = value
        self.source = source
        self.isStale = isStale
        self.version = version
    }
}

/// Given to a factory: the stale value if there is one, the options it may change (adaptive
/// caching), the tags it may set, and a way to say the stale value is still good.
public final class FactoryContext<Value: Sendable>: Sendable {
    private struct State {
        var options: CacheEntryOptions
        var tags: [String]
        var notModified = false
    }

    /// The key being loaded.
    public let key: String
    /// The last known value, if any (from L1 or L2), even if expired.
    public let staleValue: Value?
    private let state: Mutex<State>

    init(key: String, staleValue: Value?, options: CacheEntryOptions, tags: [String]) {
        self.key = key
        self.staleValue = staleValue
        self.state = Mutex(State(options: options, tags: tags))
    }

    /// The options the entry will be stored with; change them from the loaded value.
    public var options: CacheEntryOptions {
        get { state.withLock { $0.options } }
        set { state.withLock { $0.options = newValue } }
    }

    /// The tags the entry will carry.
    public var tags: [String] {
        get { state.withLock { $0.tags } }
        set { state.withLock { $0.tags = newValue } }
    }

    /// Keeps the stale value and renews its expiry; return what this returns from the factory.
    /// Throws `CacheError(.notFound)` when there is no stale value.
    public func notModified() throws -> Value {
        guard let staleValue else {
            throw CacheError(.notFound, "notModified() needs a stale value and there is none for '\(key)'")
        }
        state.withLock { $0.notModified = true }
        return staleValue
    }

    var isNotModified: Bool { state.withLock { $0.notModified } }
}

import Synchronization
