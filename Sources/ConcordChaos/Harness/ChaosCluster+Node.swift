import ConcordNode
import Foundation
import Logging

extension ChaosCluster {
    /// One node: fixed id and port (a killed node comes back on the same ones), its proxy, and
    /// the client the workload and probes use.
    struct Node: Sendable {
        let index: Int
        let id: String
        let port: Int
        /// Its fault proxy; nil with `--network netns`, where the kernel cuts links instead, and on
        /// the Sentinel topology, where nodes find the master through the Sentinels.
        let proxy: FaultProxy?
        let client: NodeClient
        let arguments: [String]
        /// The host the harness reaches it on.
        let host: String

        /// The same node on another port: its `--port` argument and its client follow.
        func moved(to port: Int, clientConfiguration: NodeClient.Configuration, logger: Logger) -> Node {
            var arguments = arguments
            if let flag = arguments.firstIndex(of: "--port"), flag + 1 < arguments.count { arguments[flag + 1] = "\(port)" }
            return Node(
                index: index, id: id, port: port, proxy: proxy,
                client: NodeClient(host: host, port: port, configuration: clientConfiguration, logger: logger),
                arguments: arguments, host: host)
        }
    }

    /// A node's start failed because its port was taken between `FreePort` picking it and the
    /// node binding it (another process's listener or outgoing connection got it first).
    struct PortTaken: Error {}

    /// What a log file holds from byte `offset` on (what one launch appended).
    static func text(of file: URL, from offset: Int) -> String {
        guard let data = FileManager.default.contents(atPath: file.path), data.count > offset else { return "" }
        return String(decoding: data.dropFirst(offset), as: UTF8.self)
    }

    /// The last lines of a log file, for error messages.
    static func tail(of file: URL, lines: Int = 20) -> String {
        guard let data = FileManager.default.contents(atPath: file.path) else { return "(no output)" }
        let text = String(decoding: data, as: UTF8.self)
        return text.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines).joined(separator: "\n")
    }
}
