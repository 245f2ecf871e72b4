import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where a chaos run is, for the progress line.
package struct ChaosProgress: Sendable, Hashable {
    package var phase: String = "starting"
    /// Since the workload started (zero before).
    package var elapsed: Duration = .zero
    package var duration: Duration = .zero
    package var operations: Int = 0
    package var faultsDone: Int = 0
    package var faultsTotal: Int = 0
    /// The fault in force, or what the harness is doing about the last one.
    package var current: String?

    package init() {}

    package var line: String {
        var text = "chaos: \(phase)"
        if duration > .zero {
            text += " \(Int(elapsed.milliseconds / 1_000))s/\(Int(duration.milliseconds / 1_000))s"
        }
        text += "  ops \(operations)  faults \(faultsDone)/\(faultsTotal)"
        if let current { text += "  \(current)" }
        return text
    }
}

/// Prints the progress line on stderr: rewritten in place four times a second on a terminal,
/// a plain line every ten seconds otherwise (CI logs should not fill with carriage returns).
struct ProgressLine: Sendable {
    let isTerminal: Bool

    init() {
        isTerminal = isatty(STDERR_FILENO) == 1
    }

    /// Prints until cancelled, then clears the line.
    func run(_ snapshot: @Sendable () -> ChaosProgress) async {
        let interval: Duration = isTerminal ? .milliseconds(250) : .seconds(10)
        while !Task.isCancelled {
            let line = snapshot().line
            if isTerminal {
                Self.write("\r\u{1B}[2K" + String(line.prefix(160)))
            } else {
                Self.write(line + "\n")
            }
            do { try await Task.sleep(for: interval) } catch { break }
        }
        if isTerminal { Self.write("\r\u{1B}[2K") }
    }

    static func write(_ text: String) {
        FileHandle.standardError.write(Data(text.utf8))
    }
}
