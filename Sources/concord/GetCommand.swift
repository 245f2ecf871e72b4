import ArgumentParser
import ConcordNode
import Foundation

/// `concord get KEY`: prints the value on stdout and the Concord-* headers on stderr.
struct GetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "get",
        abstract: "Read a key through a node.",
        discussion: "The value goes to standard output; source, version and staleness go to standard error, so $(concord get KEY) captures only the value."
    )

    @Argument(help: "The key")
    var key: String

    @Flag(name: .customLong("value-only"), help: "Print only the value")
    var valueOnly = false

    @OptionGroup var connection: NodeConnectionOptions

    func run() async throws {
        let client = try connection.client()
        let response = try await request("get \(key)") { try await client.get(key) }
        if !valueOnly {
            printToStandardError("source: \(response.source ?? "?")  version: \(response.version ?? "?")  stale: \(response.isStale)")
        }
        var output = Data(response.body)
        // A newline after the value keeps a terminal prompt on its own line; pipes get the bytes as stored.
        if isatty(STDOUT_FILENO) == 1 { output.append(contentsOf: [0x0A]) }
        FileHandle.standardOutput.write(output)
    }
}
