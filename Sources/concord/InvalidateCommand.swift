import ArgumentParser
import ConcordNode

/// `concord invalidate KEY...`: expires keys on every node.
struct InvalidateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "invalidate",
        abstract: "Expire keys on every node: no longer fresh, still available to fail-safe."
    )

    @Argument(help: "The keys")
    var keys: [String]

    @OptionGroup var connection: NodeConnectionOptions

    func validate() throws {
        if keys.isEmpty { throw ValidationError("give at least one key") }
    }

    func run() async throws {
        let client = try connection.client()
        _ = try await request("invalidate") { try await client.invalidate(keys) }
        print("invalidated \(keys.count) key\(keys.count == 1 ? "" : "s")")
    }
}
