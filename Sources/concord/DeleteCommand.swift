import ArgumentParser
import ConcordNode

/// `concord del KEY`: removes a key on every node.
struct DeleteCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "del",
        abstract: "Remove a key on every node (the next read reloads it from the origin, if any)."
    )

    @Argument(help: "The key")
    var key: String

    @OptionGroup var connection: NodeConnectionOptions

    func run() async throws {
        let client = try connection.client()
        let response = try await request("del \(key)") { try await client.delete(key) }
        print("version \(response.version ?? "?")")
    }
}
