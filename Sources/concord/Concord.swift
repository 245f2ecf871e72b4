import ArgumentParser

/// The `concord` command line: node server, cluster launcher, client commands, chaos and bench.
/// `ConcordMain` runs it, after choosing the global executor.
struct ConcordCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "concord",
        abstract: "A hybrid L1 + Redis cache whose nodes stay coherent.",
        // One entry per line, so adding a subcommand is a one-line change.
        subcommands: [
            NodeCommand.self,
            ClusterCommand.self,
            GetCommand.self,
            SetCommand.self,
            DeleteCommand.self,
            InvalidateCommand.self,
            ChaosCommand.self,
            BenchCommand.self,
        ]
    )
}
