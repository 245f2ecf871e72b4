import ArgumentParser
import ConcordNode
import Foundation
import NIOSSL

/// `--node` and `--timeout`, shared by the client commands.
struct NodeConnectionOptions: ParsableArguments {
    @Option(name: .customLong("node"), help: "The node to talk to (env CONCORD_NODE; default http://127.0.0.1:7001)")
    var node: String?

    @Option(help: "Give up on a request after this long")
    var timeout: String = "5s"

    @Option(name: .customLong("token-file"), help: "File whose first line is the bearer token to send (env CONCORD_TOKEN holds the token itself)")
    var tokenFile: String?

    @Option(name: .customLong("cacert"), help: "PEM certificates to trust for an https:// node, instead of the system's")
    var caCertificates: String?

    /// The token from --token-file, else CONCORD_TOKEN; never from argv, where `ps` shows it.
    func bearerToken() throws -> String? {
        if let tokenFile {
            guard let text = try? String(contentsOfFile: tokenFile, encoding: .utf8),
                  let line = text.split(whereSeparator: \.isNewline).map({ $0.trimmingCharacters(in: .whitespaces) }).first(where: { !$0.isEmpty })
            else {
                throw ValidationError("--token-file: cannot read a token from '\(tokenFile)'")
            }
            return line
        }
        return ProcessInfo.processInfo.environment["CONCORD_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
    }

    func client() throws -> NodeClient {
        let url = node ?? ProcessInfo.processInfo.environment["CONCORD_NODE"].flatMap { $0.isEmpty ? nil : $0 } ?? "http://127.0.0.1:7001"
        guard let timeout = DurationSyntax.parse(timeout), timeout > .zero else {
            throw ValidationError("--timeout: '\(self.timeout)' is not a duration; write 250ms, 5s or 1m")
        }
        var configuration = NodeClient.Configuration(requestTimeout: timeout)
        configuration.bearerToken = try bearerToken()
        if let caCertificates {
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.trustRoots = .file(caCertificates)
            configuration.tls = tls
        }
        do {
            return try NodeClient(url: url, configuration: configuration)
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
