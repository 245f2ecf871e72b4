import Tracing

/// A backplane whose publishes are `concord.backplane.publish` spans and carry that span's
/// trace context in their message. The cache puts it in front of its backplane only when it
/// traces; applying messages is traced by the cache itself (`concord.backplane.apply`).
struct TracedBackplane: Backplane {
    let base: any Backplane
    let tracing: CacheTracing

    func publish(_ mutation: CacheMutation) async throws -> UInt64 {
        try await tracing.withSpan("concord.backplane.publish", kind: .producer) { span in
            span.attributes["concord.kind"] = mutation.kind.description
            span.attributes["concord.key"] = mutation.key
            var mutation = mutation
            mutation.traceContext = tracing.injectedContext()
            let sequence = try await base.publish(mutation)
            span.attributes["concord.seq"] = Int64(truncatingIfNeeded: sequence)
            return sequence
        }
    }

    func head() async throws -> BackplaneHead { try await base.head() }

    func readLog(from: UInt64, through: UInt64) async throws -> BackplaneLogRead {
        try await base.readLog(from: from, through: through)
    }

    func run(events: BackplaneEventSink) async throws { try await base.run(events: events) }

    var messageAuthenticator: (any MessageAuthenticator)? { base.messageAuthenticator }
    var isUsableWithoutRun: Bool { base.isUsableWithoutRun }
}
