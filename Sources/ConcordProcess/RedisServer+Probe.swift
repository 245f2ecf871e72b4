#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension RedisServer {
    /// Sends PING and `INFO server` on a short-lived blocking socket; returns the server's pid once it answers PONG.
    public static func probe(port: Int, password: String?) -> Int32? {
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

        var request = ""
        if let password {
            request += command(["AUTH", password])
        }
        request += command(["INFO", "server"]) + command(["PING"])
        let bytes = Array(request.utf8)
        let sent = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        guard sent == bytes.count else { return nil }

        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16_384)
        let pong = Array("+PONG\r\n".utf8)
        while received.count < 1_000_000 {
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { return nil }
            received.append(contentsOf: chunk[0..<count])
            if received.count >= pong.count, Array(received.suffix(pong.count)) == pong { break }
        }
        let text = String(decoding: received, as: UTF8.self)
        guard let line = text.split(separator: "\r\n").first(where: { $0.hasPrefix("process_id:") }) else { return nil }
        return Int32(line.dropFirst("process_id:".count))
    }

    private static func command(_ arguments: [String]) -> String {
        "*\(arguments.count)\r\n" + arguments.map { "$\($0.utf8.count)\r\n\($0)\r\n" }.joined()
    }
}
