#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// A latency client of redis-benchmark's weight, for one connection with one request in flight:
/// one thread of its own, one blocking TCP socket (`TCP_NODELAY`), and per request a `write` of
/// the whole request, `read`s until the whole response is framed, and two clock reads. No event
/// loop, no Swift concurrency hop and no allocation inside the measured loop.
///
/// The same client speaks HTTP to the node (and nginx) and RESP to redis-server, so its own cost
/// is the same on both sides of a comparison; the `node` suite shows its RESP figure next to
/// redis-benchmark's as the control.
struct OneInFlightClient: Sendable {
    /// What one run measured.
    struct Latencies: Sendable {
        /// Each measured request's round trip in nanoseconds, sorted.
        var nanoseconds: [UInt64]

        /// The `fraction` percentile (0.5 for the median) in microseconds.
        func percentileMicroseconds(_ fraction: Double) -> Double {
            guard !nanoseconds.isEmpty else { return 0 }
            let index = min(nanoseconds.count - 1, max(0, Int((Double(nanoseconds.count) * fraction).rounded(.up)) - 1))
            return Double(nanoseconds[index]) / 1_000
        }
    }

    var port: Int
    /// The bytes of one request, sent as they are every time.
    var request: [UInt8]
    var framing: OneInFlightFraming
    /// Requests sent before measuring (not recorded).
    var warmUp = 200
    /// How long one `read` or `write` may wait before the run fails with `.timedOut`.
    var socketTimeout: Duration = .seconds(5)

    /// `GET path` over HTTP/1.1, keep-alive, expecting 200.
    static func http(port: Int, path: String) -> OneInFlightClient {
        OneInFlightClient(
            port: port, request: Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".utf8),
            framing: .http(expectedStatus: 200))
    }

    /// RESP `GET key`, expecting a bulk string.
    static func respGet(port: Int, key: String) -> OneInFlightClient {
        let keyBytes = Array(key.utf8)
        let request = Array("*2\r\n$3\r\nGET\r\n$\(keyBytes.count)\r\n".utf8) + keyBytes + [13, 10]
        return OneInFlightClient(port: port, request: request, framing: .respBulkString)
    }

    /// Runs on a thread of its own until `budget` is spent (count or time, whichever first) and
    /// returns every measured round trip.
    func measure(budget: BenchBudget) async throws -> Latencies {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Latencies, any Error>) in
            let thread = Thread {
                do {
                    continuation.resume(returning: try self.run(budget: budget))
                } catch {
                    continuation.resume(throwing: error)
                }
            }
            thread.name = "one-in-flight"
            thread.start()
        }
    }

    /// The blocking loop itself, on the calling thread.
    func run(budget: BenchBudget) throws(OneInFlightClientError) -> Latencies {
        let socket = try connect()
        defer { close(socket) }
        var buffer = [UInt8](repeating: 0, count: 65_536)
        for _ in 0..<warmUp {
            try roundTrip(socket, buffer: &buffer)
        }
        var samples = [UInt64]()
        samples.reserveCapacity(budget.maxCount)
        let deadline = BenchClock.nanoseconds() &+ BenchClock.nanoseconds(budget.maxDuration)
        while samples.count < budget.maxCount {
            let start = BenchClock.nanoseconds()
            try roundTrip(socket, buffer: &buffer)
            let end = BenchClock.nanoseconds()
            samples.append(end &- start)
            if end >= deadline { break }
        }
        samples.sort()
        return Latencies(nanoseconds: samples)
    }

    private func connect() throws(OneInFlightClientError) -> Int32 {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { throw .connectFailed(Self.errnoText()) }
        var one: Int32 = 1
        setsockopt(socket, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        let (seconds, attoseconds) = socketTimeout.components
        var timeout = timeval(tv_sec: Int(seconds), tv_usec: Int(attoseconds / 1_000_000_000_000))
        setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(socket, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = in_addr_t(UInt32(0x7F00_0001).bigEndian)
        let status = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard status == 0 else {
            let reason = Self.errnoText()
            close(socket)
            throw .connectFailed("127.0.0.1:\(port): \(reason)")
        }
        return socket
    }

    /// Writes the request and reads until one whole response is in `buffer`.
    @inline(__always)
    private func roundTrip(_ socket: Int32, buffer: inout [UInt8]) throws(OneInFlightClientError) {
        var sent = 0
        while sent < request.count {
            let count = request.withUnsafeBytes { Glibc.write(socket, $0.baseAddress! + sent, $0.count - sent) }
            if count < 0 {
                if errno == EINTR { continue }
                throw errno == EAGAIN || errno == EWOULDBLOCK ? .timedOut : .io(Self.errnoText())
            }
            sent += count
        }
        var filled = 0
        while true {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(socket, $0.baseAddress! + filled, $0.count - filled) }
            if count == 0 { throw .closed }
            if count < 0 {
                if errno == EINTR { continue }
                throw errno == EAGAIN || errno == EWOULDBLOCK ? .timedOut : .io(Self.errnoText())
            }
            filled += count
            let scan = buffer.withUnsafeBytes { bytes in
                Result { () throws(OneInFlightClientError) in try framing.scan(UnsafeRawBufferPointer(rebasing: bytes[0..<filled])) }
            }
            switch try scan.get() {
            case .incomplete:
                guard filled < buffer.count else { throw .badReply("a response longer than \(buffer.count) bytes") }
            case .complete(let length):
                // One request is in flight, so nothing may follow its response.
                guard length == filled else { throw .badReply("\(filled - length) bytes after the response") }
                return
            }
        }
    }

    private static func errnoText() -> String {
        String(cString: strerror(errno))
    }
}
