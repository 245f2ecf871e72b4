/// One client operation against a node as the harness saw it: what, where, when, and what came back.
package struct Operation: Sendable, Hashable, Identifiable {
    /// The kinds of request the workload makes.
    package enum Kind: String, Sendable, Hashable, Codable, CaseIterable {
        /// GET /v1/cache/{key}.
        case read
        /// The writer set the origin to a new version, then PUT the value.
        case write
        /// The writer set the origin to a new version, then DELETE so the next read reloads it.
        case delete
        /// The writer set the origin to a new version, then POST /v1/invalidate (one operation
        /// per key of the request, all with its start and end).
        case invalidate
        /// The writer set the origin to a new version for every key of a tag, then
        /// DELETE /v1/tags/{tag} (one operation per key of the tag).
        case removeTag
        /// Every key of the origin was raised to one new version, then POST /v1/clear. One
        /// operation with `Operation.everyKey` as its key: it supersedes every key at once.
        case clear

        /// Writes, deletes and invalidations all make a new origin version the one to read.
        package var isMutation: Bool { self != .read }
    }

    /// The tier that answered a read (`Concord-Source`).
    package enum Source: String, Sendable, Hashable, Codable, CaseIterable {
        case memory, distributed, origin
    }

    /// Why the harness made the request, so checks can pick the reads meant for them.
    package enum Purpose: String, Sendable, Hashable, Codable, CaseIterable {
        /// Ordinary traffic.
        case workload
        /// A read of every key on every node after a heal, to measure convergence (C5).
        case probe
        /// A read after everything healed and settled, to find lost writes (C6).
        case final
    }

    /// How the request ended.
    package enum Outcome: Sendable, Hashable {
        /// Acknowledged. For a read, the version returned (nil: not found); for a mutation, the
        /// origin version it established (nil when unknown).
        case ok(version: Int64?)
        /// No usable answer (transport error, timeout, 5xx). Not a violation; counted as an error.
        case failed(String)

        package var version: Int64? {
            if case .ok(let version) = self { return version }
            return nil
        }

        package var isOK: Bool {
            if case .ok = self { return true }
            return false
        }
    }

    /// The key of a `clear`, which touches every key.
    package static let everyKey = "*"

    package var id: Int
    package var kind: Kind
    package var node: String
    package var key: String
    /// When the request was sent, since the harness started, on one monotonic clock.
    package var start: Duration
    /// When the response (the ack, for a mutation) arrived.
    package var end: Duration
    package var outcome: Outcome
    /// The node flagged the value as served by fail-safe (`Concord-Stale: true`).
    package var stale: Bool
    package var source: Source?
    package var purpose: Purpose
    /// A PUT with `?background=true`: acknowledged once in L1, before L2 has it, so the node's
    /// death right after the ack may lose it (the checker excuses that case, and only that).
    package var background: Bool

    package init(
        id: Int,
        kind: Kind,
        node: String,
        key: String,
        start: Duration,
        end: Duration,
        outcome: Outcome,
        stale: Bool = false,
        source: Source? = nil,
        purpose: Purpose = .workload,
        background: Bool = false
    ) {
        self.id = id
        self.kind = kind
        self.node = node
        self.key = key
        self.start = start
        self.end = end
        self.outcome = outcome
        self.stale = stale
        self.source = source
        self.purpose = purpose
        self.background = background
    }

    /// The version as an orderable number; "not found" sorts below every real version.
    var rank: Int64 { outcome.version ?? Int64.min }

    /// A one-line rendering for reports.
    package var summary: String {
        let result: String
        switch outcome {
        case .ok(let version?): result = "v\(version)"
        case .ok(nil): result = kind == .read ? "not found" : "ok"
        case .failed(let message): result = "failed: \(message)"
        }
        var text = "#\(id) \(kind.rawValue) \(node) \(key) [\(start.shortDescription) → \(end.shortDescription)] \(result)"
        if stale { text += " STALE" }
        if let source { text += " from \(source.rawValue)" }
        if purpose != .workload { text += " (\(purpose.rawValue))" }
        if background { text += " (background)" }
        return text
    }
}

extension Operation: Codable {
    private enum CodingKeys: String, CodingKey {
        case id, kind, node, key, startMs, endMs, version, error, stale, source, purpose, background
    }

    package init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        id = try container.decode(Int.self, forKey: .id)
        kind = try container.decode(Kind.self, forKey: .kind)
        node = try container.decode(String.self, forKey: .node)
        key = try container.decode(String.self, forKey: .key)
        start = try container.decodeMilliseconds(forKey: .startMs)
        end = try container.decodeMilliseconds(forKey: .endMs)
        if let error = try container.decodeIfPresent(String.self, forKey: .error) {
            outcome = .failed(error)
        } else {
            outcome = .ok(version: try container.decodeIfPresent(Int64.self, forKey: .version))
        }
        stale = try container.decodeIfPresent(Bool.self, forKey: .stale) ?? false
        source = try container.decodeIfPresent(Source.self, forKey: .source)
        purpose = try container.decodeIfPresent(Purpose.self, forKey: .purpose) ?? .workload
        background = try container.decodeIfPresent(Bool.self, forKey: .background) ?? false
    }

    package func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(kind, forKey: .kind)
        try container.encode(node, forKey: .node)
        try container.encode(key, forKey: .key)
        try container.encodeMilliseconds(start, forKey: .startMs)
        try container.encodeMilliseconds(end, forKey: .endMs)
        switch outcome {
        case .ok(let version): try container.encodeIfPresent(version, forKey: .version)
        case .failed(let message): try container.encode(message, forKey: .error)
        }
        if stale { try container.encode(true, forKey: .stale) }
        try container.encodeIfPresent(source, forKey: .source)
        if purpose != .workload { try container.encode(purpose, forKey: .purpose) }
        if background { try container.encode(true, forKey: .background) }
    }
}
