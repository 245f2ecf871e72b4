import NIOCore

/// A `TaskExecutor` that runs Swift tasks on a NIO event loop.
///
/// A task that prefers it runs on the same thread as its Redis connection: submitting a command
/// and resuming with its reply then happen without waking another thread, which saves two
/// thread hand-offs per command (most of the cost of a lone caller on a busy machine). Code
/// running there must never block, or it stalls the connection's I/O.
final class EventLoopTaskExecutor: TaskExecutor {
    let eventLoop: any EventLoop

    init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute {
            job.runSynchronously(on: self.asUnownedTaskExecutor())
        }
    }
}
