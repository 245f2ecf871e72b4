@_spi(ConcordBackend) import Concord
import ConcordTesting
import InMemoryTracing
import Testing
import Tracing

/// Spans of a cache given an in-process tracer (`HybridCacheConfiguration.tracer`), on the
/// in-memory L2 and bus: names, attributes, parents, and the link from a backplane message's
/// apply to the span that wrote it.
@Suite("HybridCache tracing")
struct HybridCacheTracingTests {
    let clock = ManualClock()
    let store = InMemoryCacheStore()

    func finished(_ tracer: InMemoryTracer, _ name: String) -> [FinishedInMemorySpan] {
        tracer.finishedSpans.filter { $0.operationName == name }
    }

    func attribute(_ span: FinishedInMemorySpan, _ name: String) -> SpanAttribute? {
        span.attributes[name]?.toSpanAttribute()
    }

    @Test("a miss is a getOrSet span with L2 read and factory spans under it; the next call is an L1 hit")
    func missThenHit() async throws {
        let tracer = InMemoryTracer()
        let cache = try makeCache(node: "a", clock: clock, store: store) { $0.tracer = tracer }
        let loaded = try await cache.getOrSetResult("k", as: String.self) { _ in "v1" }
        #expect(loaded.source == .factory)

        let operation = try #require(finished(tracer, "concord.getOrSet").only)
        #expect(attribute(operation, "concord.hit_level") == .string("factory"))
        #expect(attribute(operation, "concord.stale") == .bool(false))
        #expect(attribute(operation, "concord.coalesced") == .bool(false))
        #expect(attribute(operation, "concord.key") == .string("k"))
        #expect(attribute(operation, "concord.cache") == .string("test"))
        #expect(operation.parentSpanID == nil)

        let read = try #require(finished(tracer, "concord.l2.read").only)
        #expect(read.parentSpanID == operation.spanID && read.traceID == operation.traceID)
        #expect(attribute(read, "concord.found") == .bool(false))
        #expect(read.kind == .client)
        let factory = try #require(finished(tracer, "concord.factory").only)
        #expect(factory.parentSpanID == operation.spanID)
        #expect(attribute(factory, "concord.has_stale") == .bool(false))
        // The fill is written to L2 in the same trace.
        let write = try #require(finished(tracer, "concord.l2.write").only)
        #expect(write.traceID == operation.traceID)
        #expect(attribute(write, "concord.kind") == .string("set"))

        tracer.clearAll()
        let hit = try await cache.getOrSetResult("k", as: String.self) { _ in "unused" }
        #expect(hit.source == .memory)
        let hitSpan = try #require(finished(tracer, "concord.getOrSet").only)
        #expect(attribute(hitSpan, "concord.hit_level") == .string("memory"))
        #expect(finished(tracer, "concord.l2.read").isEmpty && finished(tracer, "concord.factory").isEmpty)
    }

    @Test("a value another node wrote is an L2 hit, and a failing factory's error is recorded on its spans")
    func distributedHitAndFailingFactory() async throws {
        let writer = try makeCache(node: "w", clock: clock, store: store)
        try await writer.set("shared", "v")
        let tracer = InMemoryTracer()
        let cache = try makeCache(node: "a", clock: clock, store: store) { $0.tracer = tracer }
        #expect(try await cache.getOrSetResult("shared", as: String.self) { _ in "unused" }.source == .distributed)
        let operation = try #require(finished(tracer, "concord.getOrSet").only)
        #expect(attribute(operation, "concord.hit_level") == .string("distributed"))
        #expect(attribute(try #require(finished(tracer, "concord.l2.read").only), "concord.found") == .bool(true))

        tracer.clearAll()
        await #expect(throws: TestFailure.self) {
            _ = try await cache.getOrSet("failing", as: String.self) { () async throws -> String in throw TestFailure() }
        }
        let factory = try #require(finished(tracer, "concord.factory").only)
        #expect(factory.errors.count == 1 && factory.status?.code == .error)
        #expect(try #require(finished(tracer, "concord.getOrSet").only).status?.code == .error)
    }

    @Test("a caller that waits for another caller's load is marked coalesced; the factory runs once")
    func coalescedCallers() async throws {
        let tracer = InMemoryTracer()
        let cache = try makeCache(node: "a", clock: clock, store: store) { $0.tracer = tracer }
        let gate = Gate()
        let calls = CallCounter()
        try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<2 {
                group.addTask {
                    try await cache.getOrSet("k", as: String.self) { _ in
                        calls.increment()
                        await gate.wait()
                        return "v"
                    }
                }
            }
            // Opened only once the second caller has joined the first one's flight.
            let joined = await eventually {
                tracer.activeSpans.contains { $0.operationName == "concord.getOrSet" && $0.attributes["concord.coalesced"]?.toSpanAttribute() == .bool(true) }
            }
            #expect(joined)
            gate.open()
            for try await value in group { #expect(value == "v") }
        }
        #expect(calls.count == 1)
        let operations = finished(tracer, "concord.getOrSet")
        #expect(operations.count == 2)
        #expect(operations.filter { attribute($0, "concord.coalesced") == .bool(true) }.count == 1)
        #expect(finished(tracer, "concord.factory").count == 1)
    }

    @Test("the node that applies a backplane message links its span to the writer's, through the message")
    func applyLinksToTheWriter() async throws {
        let writerTracer = InMemoryTracer()
        // Ids of its own, so the reader's traces cannot share an id with the writer's by chance.
        let readerIDs = CallCounter()
        let readerTracer = InMemoryTracer(idGenerator: .init(
            nextTraceID: { "reader-trace-\(readerIDs.increment())" },
            nextSpanID: { "reader-span-\(readerIDs.increment())" }
        ))
        let backplaneA = InMemoryBackplane(store: store), backplaneB = InMemoryBackplane(store: store)
        let a = try makeCache(node: "a", clock: clock, store: store, backplane: backplaneA) { $0.tracer = writerTracer }
        let b = try makeCache(node: "b", clock: clock, store: store, backplane: backplaneB) { $0.tracer = readerTracer }
        try await withRunning([a, b], clock: clock, sleepersPerCache: 2) {
            #expect(await eventually { a.isBackplaneConnected && b.isBackplaneConnected })
            try await writerTracer.withSpan("request") { _ in
                _ = try await a.set("k", "v1")
            }
            #expect(await eventually { !readerTracer.finishedSpans.filter { $0.operationName == "concord.backplane.apply" }.isEmpty })
        }
        let request = try #require(finished(writerTracer, "request").only)
        let write = try #require(finished(writerTracer, "concord.l2.write").only)
        #expect(write.parentSpanID == request.spanID)
        #expect(attribute(write, "concord.publish") == .bool(true))
        #expect(write.kind == .producer)

        let apply = try #require(finished(readerTracer, "concord.backplane.apply").first)
        #expect(apply.kind == .consumer)
        #expect(attribute(apply, "concord.key") == .string("k"))
        #expect(attribute(apply, "concord.source") == .string("a"))
        #expect(attribute(apply, "concord.node") == .string("b"))
        // A trace of its own, linked to the span that wrote the message.
        #expect(apply.parentSpanID == nil && apply.traceID != write.traceID)
        let linked = try #require(apply.links.only?.context.inMemorySpanContext)
        #expect(linked.spanID == write.spanID && linked.traceID == write.traceID)
    }

    @Test("a backplane-only publish is a producer span whose context its message carries")
    func backplaneOnlyPublish() async throws {
        let tracer = InMemoryTracer()
        let backplane = InMemoryBackplane(store: store)
        let cache = try makeCache(node: "a", clock: clock, backplane: backplane) { $0.tracer = tracer }
        let listener = InMemoryBackplane(store: store)
        try await withRunning([cache], clock: clock, sleepersPerCache: 2) {
            #expect(await eventually { cache.isBackplaneConnected })
            try await cache.remove("k")
        }
        let publish = try #require(finished(tracer, "concord.backplane.publish").only)
        #expect(publish.kind == .producer && attribute(publish, "concord.kind") == .string("remove"))
        guard case .messages(let raw) = try await listener.readLog(from: 1, through: 1) else {
            Issue.record("the log lost the message")
            return
        }
        let message = try BackplaneMessage.decode(try #require(raw.only))
        #expect(message.traceContext?.fields[InMemoryTracer.spanIDKey] == publish.spanID)
        #expect(message.traceContext?.fields[InMemoryTracer.traceIDKey] == publish.traceID)
    }

    @Test("an untraced cache's messages carry no trace context")
    func untracedMessagesCarryNoContext() async throws {
        let backplane = InMemoryBackplane(store: store)
        let cache = try makeCache(node: "a", clock: clock, store: store, backplane: backplane)
        try await withRunning([cache], clock: clock, sleepersPerCache: 2) {
            #expect(await eventually { cache.isBackplaneConnected })
            try await cache.set("k", "v")
        }
        guard case .messages(let raw) = try await backplane.readLog(from: 1, through: 1) else {
            Issue.record("the log lost the message")
            return
        }
        #expect(try BackplaneMessage.decode(try #require(raw.only)).traceContext == nil)
    }
}

extension Array {
    /// The one element, or nil when there are none or several.
    var only: Element? { count == 1 ? first : nil }
}
