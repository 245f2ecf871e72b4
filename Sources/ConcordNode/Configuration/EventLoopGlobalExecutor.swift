import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Swift's global executor hook pointed at SwiftNIO's singleton event loop group, with each job
/// run as Swift's own global executor runs it: on the generic executor.
///
/// SwiftNIO's `NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor`
/// runs each job as isolated to its loop's serial executor. A task then sits on an executor that
/// is not the generic one, so every hop back to the generic executor (the entry to any
/// nonisolated async function, the return from an actor) re-enqueues it on the loop instead of
/// continuing on the spot: a loop turn per hop (measured per RESP SET: 39.7 global enqueues
/// against 2.2 on Swift's pool; `swift_task_switch` and `flagAsAndEnqueueOnExecutor` were 8% of
/// the node's profile). Run on the generic
/// executor, those hops cost nothing, as on Swift's pool, and the job still runs on the loop the
/// enqueuing thread belongs to (the group's `any()` keeps a loop thread's work on its loop), so a
/// Redis reply resumes its caller on the connection's thread.
enum EventLoopGlobalExecutor {
    private typealias Original = @convention(thin) (UnownedJob) -> Void
    private typealias Hook = @convention(thin) (UnownedJob, Original) -> Void

    /// Sets the runtime's global enqueue hook, once, before any task has started. False when
    /// the runtime has no such hook, or something else has set it.
    static func install() -> Bool {
        guard MemoryLayout<UnownedSerialExecutor>.size == 2 * MemoryLayout<UInt>.size,
              let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "swift_task_enqueueGlobal_hook")
        else { return false }
        let slot = symbol.assumingMemoryBound(to: UnsafeRawPointer?.self)
        guard slot.pointee == nil else { return false }
        // Created now, on the main thread, rather than by the first job.
        _ = MultiThreadedEventLoopGroup.singleton
        let hook: Hook = { job, _ in
            MultiThreadedEventLoopGroup.singleton.any().execute {
                // The generic executor is the null executor reference.
                runJob(job, unsafeBitCast((UInt(0), UInt(0)), to: UnownedSerialExecutor.self))
            }
        }
        slot.pointee = unsafeBitCast(hook, to: UnsafeRawPointer.self)
        return true
    }
}

/// The runtime's entry that runs a job on a serial executor (what `UnownedJob.runSynchronously(on:)`
/// calls), declared here to pass it the generic executor, which has no public spelling.
@_silgen_name("swift_job_run")
private func runJob(_ job: UnownedJob, _ executor: UnownedSerialExecutor)
