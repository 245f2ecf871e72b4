@testable import ConcordNode
import NIOCore
import NIOEmbedded
import Testing

/// The request deadline on the embedded event loop, whose clock only moves when the test moves
/// it: no test here waits for real time.
@Suite("Request deadline")
struct RequestDeadlineHandlerTests {
    /// Stands for both request and response parts: only the end matters to the handler.
    enum Part: Equatable {
        case head
        case end
    }

    private func makeChannel(timeout: TimeAmount = .seconds(3)) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8080)).wait()
        let handler = RequestDeadlineHandler<Part, Part>(
            timeout: timeout, isRequestEnd: { $0 == .end }, isResponseEnd: { $0 == .end })
        try channel.pipeline.syncOperations.addHandler(handler)
        return channel
    }

    /// A request comes in whole and is answered.
    private func exchange(_ channel: EmbeddedChannel) throws {
        try channel.writeInbound(Part.head)
        try channel.writeInbound(Part.end)
        try channel.writeOutbound(Part.head)
        try channel.writeOutbound(Part.end)
    }

    @Test("a connection whose first request is not in whole by the deadline is closed")
    func firstRequest() throws {
        let channel = try makeChannel()
        try channel.writeInbound(Part.head)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(2_999))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(1))
        #expect(!channel.isActive)
    }

    @Test("each answer gives the next request a full deadline, though the timer was set earlier")
    func deadlineMovesWithAnswers() throws {
        let channel = try makeChannel()
        // Answered at 1 s: the next request is due at 4 s. The timer set at the start fires at
        // 3 s, finds the later deadline and waits for it.
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        try exchange(channel)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(2_999))
        #expect(channel.isActive)
        try channel.writeInbound(Part.head)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(1))
        #expect(!channel.isActive)
    }

    @Test("answers written in front of the decoder give the next request a full deadline too")
    func directAnswers() throws {
        let channel = try makeChannel()
        channel.embeddedEventLoop.advanceTime(by: .seconds(2))
        channel.pipeline.fireUserInboundEventTriggered(DirectAnswersWritten())
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(2_999))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(1))
        #expect(!channel.isActive)
    }

    @Test("a connection that keeps answering in time stays open, over many deadlines")
    func steadyConnection() throws {
        let channel = try makeChannel()
        for _ in 0..<20 {
            channel.embeddedEventLoop.advanceTime(by: .seconds(2))
            try exchange(channel)
        }
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .seconds(3))
        #expect(!channel.isActive)
    }

    @Test("no deadline while a whole request waits for its answer; the answer starts the next one")
    func requestBeingAnswered() throws {
        let channel = try makeChannel()
        try channel.writeInbound(Part.head)
        try channel.writeInbound(Part.end)
        // The router may take longer than the request deadline to answer (an L2 read).
        channel.embeddedEventLoop.advanceTime(by: .seconds(10))
        #expect(channel.isActive)
        try channel.writeOutbound(Part.head)
        try channel.writeOutbound(Part.end)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(2_999))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(1))
        #expect(!channel.isActive)
    }

    @Test("removing the handler stops its timer")
    func removal() throws {
        let channel = try makeChannel()
        let handler = try channel.pipeline.syncOperations.handler(type: RequestDeadlineHandler<Part, Part>.self)
        try channel.pipeline.syncOperations.removeHandler(handler).wait()
        channel.embeddedEventLoop.advanceTime(by: .seconds(10))
        #expect(channel.isActive)
    }
}
