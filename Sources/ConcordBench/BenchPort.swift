#if canImport(Glibc)
import Glibc
#endif

/// Waits for the servers a suite starts (a `concord node`, nginx) to accept connections.
enum BenchPort {
    /// Waits until something accepts TCP connections on 127.0.0.1:`port`.
    static func waitUntilAccepting(_ port: Int, timeout: Duration = .seconds(30)) async throws {
        let accepted = try await BenchServices.waitUntil(timeout: timeout, interval: .milliseconds(20)) { accepts(port) }
        guard accepted else { throw BenchError("nothing listens on port \(port) after \(timeout)") }
    }

    private static func accepts(_ port: Int) -> Bool {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
    }
}
