import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A long-running helper of a suite (a `concord node`, nginx), stopped with SIGTERM when the
/// suite ends, and killed if it does not exit within a few seconds.
final class BenchChildProcess: Sendable {
    private let process: Process

    init(_ executable: String, _ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        self.process = process
    }

    var isRunning: Bool { process.isRunning }

    func stop() {
        guard process.isRunning else { return }
        process.terminate()
        let deadline = ContinuousClock.now + .seconds(5)
        while process.isRunning, ContinuousClock.now < deadline {
            usleep(10_000)
        }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    /// This `concord` executable, to start nodes from the bench it runs.
    static var concordExecutable: String {
        URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
    }

    /// Waits until something accepts TCP connections on 127.0.0.1:`port`.
    static func waitForPort(_ port: Int, timeout: Duration = .seconds(30)) async throws {
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
