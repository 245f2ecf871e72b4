import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Every child pid not yet reaped and every temp dir not yet removed by this process. At exit
/// the children are SIGKILLed and the dirs removed, so an `exit()` from anywhere (a second
/// Ctrl-C, a fatal path, an aborted test run) leaves neither a node nor a redis-server behind.
package final class ExitRegistry: Sendable {
    package static let shared = ExitRegistry()
    private let pids = Mutex<Set<Int32>>([])
    private let directories = Mutex<Set<String>>([])

    private init() {
        atexit {
            ExitRegistry.shared.cleanUp()
        }
    }

    package func add(_ pid: Int32) { _ = pids.withLock { $0.insert(pid) } }
    package func remove(_ pid: Int32) { _ = pids.withLock { $0.remove(pid) } }
    package func add(directory: URL) { _ = directories.withLock { $0.insert(directory.path) } }
    package func remove(directory: URL) { _ = directories.withLock { $0.remove(directory.path) } }

    /// SIGKILL to every child not yet reaped, then the temp dirs go.
    package func cleanUp() {
        for pid in pids.withLock({ $0 }) {
            _ = kill(pid, SIGKILL)
        }
        for path in directories.withLock({ $0 }) {
            try? FileManager.default.removeItem(atPath: path)
        }
    }
}
