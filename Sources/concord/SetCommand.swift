import ArgumentParser
import Concord
import ConcordNode
import Foundation

/// `concord set KEY VALUE`: writes through a node and, with `--watch`, measures how long other
/// nodes take to serve the write.
struct SetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "set",
        abstract: "Write a key through a node.",
        discussion: """
        Prints the write's version. With --watch URL (repeatable), polls those nodes after the \
        write is acknowledged until each serves that version or a newer one, and prints the \
        propagation time of each.
        """
    )

    @Argument(help: "The key")
    var key: String

    @Argument(help: "The value; - reads it from standard input")
    var value: String

    @Flag(help: "Let the node write Redis after answering")
    var background = false

    @Option(name: .customLong("watch"), help: "Another node to watch for the new version (repeatable)")
    var watched: [String] = []

    @Option(name: .customLong("watch-timeout"), help: "How long to wait for each watched node")
    var watchTimeout: String = "5s"

    @OptionGroup var connection: NodeConnectionOptions

    func run() async throws {
        let client = try connection.client()
        guard let watchTimeout = DurationSyntax.parse(watchTimeout), watchTimeout > .zero else {
            throw ValidationError("--watch-timeout: '\(self.watchTimeout)' is not a duration")
        }
        let watchers = try watched.map { url in
            do { return try NodeClient(url: url, configuration: .init(requestTimeout: .seconds(2))) } catch { throw ValidationError("--watch: \(error)") }
        }
        let bytes: [UInt8] = value == "-" ? Array(FileHandle.standardInput.readDataToEndOfFile()) : Array(value.utf8)

        let response = try await request("set \(key)") { try await client.set(key, value: bytes, background: background) }
        let acknowledged = ContinuousClock.now
        guard let versionText = response.version, let version = CacheVersion(headerValue: versionText) else {
            throw CommandFailure("set \(key): the node answered without a Concord-Version header")
        }
        print("version \(versionText)")

        var late: [String] = []
        await withTaskGroup(of: String?.self) { group in
            for watcher in watchers {
                group.addTask {
                    await Self.watch(watcher, key: key, for: version, since: acknowledged, timeout: watchTimeout)
                }
            }
            for await failure in group {
                if let failure { late.append(failure) }
            }
        }
        if !late.isEmpty {
            throw CommandFailure("not propagated within \(DurationSyntax.format(watchTimeout)): " + late.joined(separator: ", "))
        }
    }

    /// Polls a node until it serves `version` or newer; prints the time since the write's ack.
    /// Returns the node's URL when it did not within `timeout`.
    static func watch(_ node: NodeClient, key: String, for version: CacheVersion, since start: ContinuousClock.Instant, timeout: Duration) async -> String? {
        var lastSeen = "nothing"
        let left = max(timeout - (ContinuousClock.now - start), .zero)
        let served = await Retry.until(backoff: .fixed(.milliseconds(1)), limit: .duration(left)) {
            guard let response = try? await node.get(key), response.isSuccess, let text = response.version else { return false }
            lastSeen = "\(text) from \(response.source ?? "?")"
            guard let served = CacheVersion(headerValue: text), served >= version else { return false }
            let elapsed = ContinuousClock.now - start
            print("\(node.baseURL) serves \(text) (source \(response.source ?? "?")) after \(Self.milliseconds(elapsed)) ms")
            return true
        }
        if served { return nil }
        print("\(node.baseURL) still serves \(lastSeen) after \(DurationSyntax.format(timeout))")
        return node.baseURL
    }

    static func milliseconds(_ duration: Duration) -> String {
        let value = Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
        return String(format: "%.1f", value)
    }
}
