@testable import ConcordNode
import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import Testing

/// When the RESP front end holds a connection's socket reads: only while a command is awaited
/// AND more of the client's bytes wait behind it. The awaited work is captured and never run,
/// so nothing here depends on time.
@Suite("RESP read hold")
struct RESPReadHoldTests {
    /// Counts the reads that reach the socket (it sits between the handler and the head).
    final class ReadCounter: ChannelOutboundHandler, @unchecked Sendable {
        typealias OutboundIn = Any
        var reads = 0

        func read(context: ChannelHandlerContext) {
            reads += 1
            context.read()
        }
    }

    private func makeChannel(jobs: NIOLockedValueBox<[RESPJob]>) throws -> (EmbeddedChannel, ReadCounter) {
        let node = try makeMemoryNode()
        let channel = EmbeddedChannel()
        let counter = ReadCounter()
        try channel.pipeline.syncOperations.addHandler(counter)
        try channel.pipeline.syncOperations.addHandler(RESPConnectionHandler(
            reader: RESPRequestReader(maxArguments: 64, maxBufferedBytes: 1 << 20),
            executor: RESPCommandExecutor(cache: node.cache, token: nil),
            state: RESPConnectionState(id: 1),
            submit: { job in
                jobs.withLockedValue { $0.append(job) }
                return true
            }))
        return (channel, counter)
    }

    private func send(_ channel: EmbeddedChannel, _ arguments: String...) throws {
        let bytes = RESPTestConnection.encode(arguments.map { Array($0.utf8) })
        try channel.writeInbound(ByteBuffer(bytes: bytes))
    }

    @Test("a client waiting for its reply keeps reading; one that sent more behind an awaited command is held")
    func holdsOnlyWithBufferedBytes() throws {
        let jobs = NIOLockedValueBox<[RESPJob]>([])
        let (channel, counter) = try makeChannel(jobs: jobs)
        defer { _ = try? channel.finish() }

        // Nothing awaited: reads pass.
        channel.read()
        #expect(counter.reads == 1)

        // A SET is awaited (a write); the client has sent nothing more: the read still passes.
        try send(channel, "SET", "k", "v")
        #expect(jobs.withLockedValue { $0.count } == 1)
        channel.read()
        #expect(counter.reads == 2)

        // The client pipelines a GET behind it: that GET waits unparsed, and further reads are
        // held until the SET is answered.
        try send(channel, "GET", "k")
        #expect(jobs.withLockedValue { $0.count } == 1)
        #expect(try channel.readOutbound(as: ByteBuffer.self) == nil)
        channel.read()
        channel.read()
        #expect(counter.reads == 2)
    }
}
