import Logging
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Returns once the process that started this one is gone (the node is re-parented), so the
/// node's group shuts down. `concord cluster` and tests set it on their children: a launcher
/// killed with SIGKILL cannot clean up, and its nodes must not stay behind holding ports.
struct ParentProcessWatch: Service {
    let parentProcessID: Int32
    let logger: Logger
    var interval: Duration = .milliseconds(250)

    func run() async throws {
        // A graceful shutdown from elsewhere ends the watch quietly.
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                if getppid() != parentProcessID {
                    logger.warning("parent process \(parentProcessID) is gone; shutting down")
                    return
                }
                do { try await Task.sleep(for: interval) } catch { return }
            }
        }
    }
}
