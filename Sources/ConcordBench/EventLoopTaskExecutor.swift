import NIOCore

/// A task executor that runs jobs on one NIO event loop.
///
/// The `l2` suite runs a caller on the event loop that owns its Redis connection to show what
/// the thread hops cost: a caller on Swift's global pool hands each command to the event loop
/// thread and gets its reply back through the pool, a caller on the loop does neither.
final class EventLoopTaskExecutor: TaskExecutor, @unchecked Sendable {
    // @unchecked: the only state is the event loop, which is itself thread-safe.
    let eventLoop: any EventLoop

    init(_ eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute {
            job.runSynchronously(on: self.asUnownedTaskExecutor())
        }
    }
}
