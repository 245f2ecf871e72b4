#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The one blocking request a launcher's probe makes: connect to 127.0.0.1:`port`, send
/// `request`, and read until the reply ends with `terminator` (at most 1 MB, 1 s per read or
/// write). Short-lived and blocking on purpose: it runs before any event loop is involved.
enum LoopbackProbe {
    /// The reply as text, nil when nothing (or not the whole reply) came back.
    static func exchange(port: Int, request: [UInt8], until terminator: [UInt8]) -> String? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 1, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { return nil }
        guard request.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, 0) }) == request.count else { return nil }
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16_384)
        while received.count < 1_000_000 {
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { return nil }
            received.append(contentsOf: chunk[0..<count])
            if received.count >= terminator.count, Array(received.suffix(terminator.count)) == terminator { break }
        }
        return String(decoding: received, as: UTF8.self)
    }

    /// The integer after `prefix` on the first reply line that starts with it (a pid).
    static func field(_ prefix: String, in text: String) -> Int32? {
        guard let line = text.split(separator: "\r\n").first(where: { $0.hasPrefix(prefix) }) else { return nil }
        return Int32(line.dropFirst(prefix.count))
    }
}
