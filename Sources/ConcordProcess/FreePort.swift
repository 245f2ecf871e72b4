import Concord
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Free TCP ports on 127.0.0.1, asked of the kernel. Servers that must keep a fixed port (a
/// killed node restarts on the same one, a proxy keeps pointing there) pick one up front.
public enum FreePort {
    /// A port the kernel considers free right now (bind to port 0, read it back, close); tests
    /// also use it as a port nothing listens on.
    public static func next() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ProcessLaunchError("no free port on 127.0.0.1: socket() failed: \(errno)") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { throw ProcessLaunchError("no free port on 127.0.0.1: bind() failed: \(errno)") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard named == 0 else { throw ProcessLaunchError("no free port on 127.0.0.1: getsockname() failed: \(errno)") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// `count` distinct free ports. Each is released before the next is asked for, so the
    /// kernel could hand one out twice; asking again until they differ rules that out.
    public static func distinct(_ count: Int) async throws -> [Int] {
        struct Taken: Error {}
        var ports: [Int] = []
        do {
            for _ in 0..<count {
                let taken = ports
                let port = try await Retry.run(backoff: .fixed(.zero), limit: .attempts(20)) { _ in
                    let port = try next()
                    guard !taken.contains(port) else { throw Taken() }
                    return port
                }
                ports.append(port)
            }
        } catch is Taken {
            throw ProcessLaunchError("could not find \(count) distinct free ports")
        }
        return ports
    }
}
