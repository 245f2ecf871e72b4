import ConcordNode
import Foundation

/// The process entry point: installs the global executor the command asks for, which must
/// happen before the first Swift task starts, then runs the command line.
@main
enum ConcordMain {
    static func main() {
        let arguments = Array(CommandLine.arguments.dropFirst())
        if let fallback = executorFallback(subcommand: arguments.first),
           let requested = GlobalExecutor.requested(
               arguments: arguments.dropFirst(), environment: ProcessInfo.processInfo.environment, fallback: fallback)
        {
            requested.install()
        }
        // The command runs as a task on the executor just installed; the main thread only
        // serves the main queue until the command exits the process.
        Task {
            await ConcordCommand.main()
            exit(0)
        }
        dispatchMain()
    }

    /// The executor a subcommand runs on unless told otherwise; nil for the commands that take
    /// no `--executor` (they keep Swift's pool: client commands and the launchers, whose
    /// children are nodes that choose their own).
    static func executorFallback(subcommand: String?) -> GlobalExecutor? {
        switch subcommand {
        case NodeCommand.configuration.commandName: GlobalExecutor.nodeDefault
        case BenchCommand.configuration.commandName: GlobalExecutor.benchDefault
        default: nil
        }
    }
}
