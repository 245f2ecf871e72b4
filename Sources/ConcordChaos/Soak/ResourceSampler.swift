import Foundation
import Synchronization

/// Samples resident memory and open descriptors of the run's processes from /proc, at a fixed
/// interval, into one `ResourceSeries` per process. Processes are named, and looked up again at
/// every tick, so a node restarted under a new pid stays one series (its restarts counted).
final class ResourceSampler: Sendable {
    private struct State {
        var series: [String: ResourceSeries] = [:]
        var order: [String] = []
        var lastPID: [String: Int32] = [:]
    }

    let interval: Duration
    private let clock: HarnessClock
    /// The processes to sample now, by name.
    private let processes: @Sendable () -> [(name: String, pid: Int32)]
    private let state = Mutex(State())
    /// A bound on samples per process, whatever the run's length: past it, every other one is dropped.
    private let maxSamples = 20_000

    init(interval: Duration, clock: HarnessClock, processes: @escaping @Sendable () -> [(name: String, pid: Int32)]) {
        self.interval = interval
        self.clock = clock
        self.processes = processes
    }

    /// Samples until cancelled.
    func run() async {
        while !Task.isCancelled {
            sampleOnce()
            try? await Task.sleep(for: interval)
        }
    }

    func sampleOnce() {
        let now = clock.now()
        for (name, pid) in processes() {
            guard let sample = Self.read(pid: pid, at: now) else { continue }
            state.withLock { state in
                if state.series[name] == nil {
                    state.series[name] = ResourceSeries(process: name)
                    state.order.append(name)
                }
                if let last = state.lastPID[name], last != pid { state.series[name]!.restarts += 1 }
                state.lastPID[name] = pid
                state.series[name]!.samples.append(sample)
                if state.series[name]!.samples.count > maxSamples {
                    state.series[name]!.samples = state.series[name]!.samples.enumerated().filter { $0.offset % 2 == 0 }.map(\.element)
                }
            }
        }
    }

    /// Every series so far, in the order processes were first seen.
    func series() -> [ResourceSeries] {
        state.withLock { state in state.order.compactMap { state.series[$0] } }
    }

    /// One process's resident memory (VmRSS of /proc/PID/status) and open descriptors (entries
    /// of /proc/PID/fd); nil if it is gone or unreadable.
    static func read(pid: Int32, at time: Duration) -> ResourceSample? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        var resident: Int?
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            if fields.count >= 2, let kilobytes = Int(fields[1]) { resident = kilobytes * 1_024 }
        }
        guard let resident else { return nil }
        guard let files = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd") else { return nil }
        return ResourceSample(time: time, residentBytes: resident, openFiles: files.count)
    }
}
