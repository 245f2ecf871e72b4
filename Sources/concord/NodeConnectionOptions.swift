import ArgumentParser
import ConcordNode
import Foundation

/// `--node` and `--timeout`, shared by the client commands.
struct NodeConnectionOptions: ParsableArguments {
    @Option(name: .customLong("node"), help: "The node to talk to (env CONCORD_NODE; default http://127.0.0.1:7001)")
    var node: String?

    @Option(help: "Give up on a request after this long")
    var timeout: String = "5s"

    func client() throws -> NodeClient {
        let url = node ?? ProcessInfo.processInfo.environment["CONCORD_NODE"].flatMap { $0.isEmpty ? nil : $0 } ?? "http://127.0.0.1:7001"
        guard let timeout = DurationSyntax.parse(timeout), timeout > .zero else {
            throw ValidationError("--timeout: '\(self.timeout)' is not a duration; write 250ms, 5s or 1m")
        }
        do {
            return try NodeClient(url: url, configuration: .init(requestTimeout: timeout))
        } catch {
            throw ValidationError("--node: \(error)")
        }
    }
}

/// Turns an error answer into the CLI's one-line error and a non-zero exit.
func checked(_ response: NodeResponse, _ what: String) throws -> NodeResponse {
    guard response.isSuccess else {
        if let error = response.error {
            throw CommandFailure("\(what): \(response.status) \(error.code): \(error.message)")
        }
        throw CommandFailure("\(what): HTTP \(response.status) \(response.text.prefix(200))")
    }
    return response
}

/// Runs a request, reporting a transport failure (no connection, timeout) as a one-line error.
func request(_ what: String, _ body: () async throws -> NodeResponse) async throws -> NodeResponse {
    do {
        return try checked(try await body(), what)
    } catch let error as NodeClientError {
        throw CommandFailure("\(what): \(error)")
    }
}

/// Writes to standard error, where the CLI puts everything but the values asked for.
func printToStandardError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}
