import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Finds the moment a server starts accepting TCP connections again, by trying to connect every
/// 200 µs on a thread of its own (a blocking connect on the concurrency pool would stall it).
final class AcceptWatcher: Sendable {
    private struct State {
        var acceptedAt: UInt64?
        var stopped = false
    }

    private let state = Mutex(State())

    /// Starts watching `port` on 127.0.0.1 for at most `timeout`.
    init(port: Int, timeout: Duration) {
        let deadline = BenchClock.nanoseconds() &+ BenchClock.nanoseconds(timeout)
        let thread = Thread { [self] in
            while BenchClock.nanoseconds() < deadline {
                if state.withLock({ $0.stopped }) { return }
                if Self.connects(port: port) {
                    let now = BenchClock.nanoseconds()
                    state.withLock { $0.acceptedAt = now }
                    return
                }
                usleep(200)
            }
        }
        thread.start()
    }

    /// When the first connection was accepted, if it has been.
    var acceptedAt: UInt64? { state.withLock { $0.acceptedAt } }

    func stop() {
        state.withLock { $0.stopped = true }
    }

    private static func connects(port: Int) -> Bool {
        #if canImport(Glibc)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let fd = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        return result == 0
    }
}
