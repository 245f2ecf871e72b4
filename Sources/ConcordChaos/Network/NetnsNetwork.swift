import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// `--network netns`: each node in its own network namespace, with two veth links to the host:
/// a data link on a bridge that Redis listens on, and a control link the harness's HTTP
/// requests use. Partitions are made by the kernel on the data link (the control link is never
/// touched, so the harness keeps seeing what the node serves):
///
/// - both ways: the data link's host end is set down (`ip link`), and packets are dropped;
/// - node can send but not hear: a blackhole route to the node's data address on the host;
/// - node can hear but not send: a blackhole route to Redis inside the node's namespace.
///
/// Every name carries the harness's pid (`cc<pid>…`) and every address is private
/// (10.213.X.0/24 data, 10.214.X.0/24 control, X chosen free at start), on links that exist
/// only inside this machine. `teardown()` removes everything, and a watchdog child does the
/// same if the harness dies without it; leftovers of earlier harnesses that died are removed at
/// start.
final class NetnsNetwork: Sendable {
    /// One node's namespace and addresses.
    struct NodeLink: Sendable {
        let namespace: String
        /// The host end of the data link (a bridge port).
        let dataInterface: String
        let dataAddress: String
        /// The node's end of its control link: where it serves HTTP.
        let controlAddress: String
    }

    /// How a fault cuts a node's data link.
    enum Cut: String, Sendable, Hashable {
        /// The link down: nothing passes either way.
        case link
        /// The node sends; what comes back is dropped.
        case deaf
        /// The node hears; what it sends is dropped.
        case mute
        /// Both blackhole routes: nothing passes, the link stays up.
        case blackhole
    }

    let ip: String
    let prefix: String
    let bridge: String
    /// Where Redis listens for the nodes.
    let redisAddress: String
    let links: [NodeLink]
    private let applied = Mutex<[Int: Cut]>([:])
    private let tornDown = Atomic<Bool>(false)

    private init(ip: String, prefix: String, bridge: String, redisAddress: String, links: [NodeLink]) {
        self.ip = ip
        self.prefix = prefix
        self.bridge = bridge
        self.redisAddress = redisAddress
        self.links = links
    }

    /// The `ip` tool, if the machine has it.
    static func ipTool() -> String? {
        ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Refuses, with the reason, when this process cannot make namespaces: not root, or no `ip`.
    static func checkAvailable() throws {
        guard geteuid() == 0 else {
            throw ChaosError(
                .invalidArgument,
                "--network netns needs root: it creates network namespaces, a bridge and veth links (run as root, or use --network proxy)")
        }
        guard ipTool() != nil else {
            throw ChaosError(.invalidArgument, "--network netns needs the ip tool (iproute2), which is not installed")
        }
    }

    /// Creates the bridge, one namespace per node and their links. On any failure, what was
    /// made is removed before the error is thrown.
    static func create(nodeCount: Int) throws -> NetnsNetwork {
        try checkAvailable()
        let ip = ipTool()!
        removeLeftovers(ip: ip)
        let pid = getpid()
        let prefix = "cc\(pid)"
        let subnet = try freeSubnet(ip: ip, preferred: Int(pid % 200) + 20)
        let links = (0..<nodeCount).map { index in
            NodeLink(
                namespace: "\(prefix)-n\(index + 1)",
                dataInterface: "\(prefix)d\(index + 1)",
                dataAddress: "10.213.\(subnet).\(10 + index)",
                controlAddress: "10.214.\(subnet).\(4 * index + 2)")
        }
        let network = NetnsNetwork(
            ip: ip, prefix: prefix, bridge: "\(prefix)br", redisAddress: "10.213.\(subnet).1", links: links)
        do {
            try network.build(subnet: subnet)
        } catch {
            network.teardown()
            throw error
        }
        return network
    }

    private func build(subnet: Int) throws {
        try run(["link", "add", bridge, "type", "bridge"])
        try run(["addr", "add", "\(redisAddress)/24", "dev", bridge])
        try run(["link", "set", bridge, "up"])
        for (index, link) in links.enumerated() {
            let control = "\(prefix)c\(index + 1)"
            try run(["netns", "add", link.namespace])
            try run(["link", "add", link.dataInterface, "type", "veth", "peer", "name", "data0", "netns", link.namespace])
            try run(["link", "set", link.dataInterface, "master", bridge])
            try run(["link", "set", link.dataInterface, "up"])
            try run(["-n", link.namespace, "addr", "add", "\(link.dataAddress)/24", "dev", "data0"])
            try run(["-n", link.namespace, "link", "set", "data0", "up"])
            try run(["-n", link.namespace, "link", "set", "lo", "up"])
            try run(["link", "add", control, "type", "veth", "peer", "name", "control0", "netns", link.namespace])
            try run(["addr", "add", "10.214.\(subnet).\(4 * index + 1)/30", "dev", control])
            try run(["link", "set", control, "up"])
            try run(["-n", link.namespace, "addr", "add", "\(link.controlAddress)/30", "dev", "control0"])
            try run(["-n", link.namespace, "link", "set", "control0", "up"])
        }
    }

    /// The executable and arguments that run `executable arguments` inside node `index`'s namespace.
    func launch(node index: Int, executable: String, arguments: [String]) -> (String, [String]) {
        (ip, ["netns", "exec", links[index].namespace, executable] + arguments)
    }

    /// Cuts node `index`'s data link the way `cut` says (healing any earlier cut first).
    func cut(node index: Int, _ cut: Cut) throws {
        try heal(node: index)
        let link = links[index]
        switch cut {
        case .link:
            try run(["link", "set", link.dataInterface, "down"])
        case .deaf:
            try run(["route", "add", "blackhole", "\(link.dataAddress)/32"])
        case .mute:
            try run(["-n", link.namespace, "route", "add", "blackhole", "\(redisAddress)/32"])
        case .blackhole:
            try run(["route", "add", "blackhole", "\(link.dataAddress)/32"])
            try run(["-n", link.namespace, "route", "add", "blackhole", "\(redisAddress)/32"])
        }
        applied.withLock { $0[index] = cut }
    }

    /// Undoes node `index`'s cut, if any.
    func heal(node index: Int) throws {
        guard let cut = applied.withLock({ $0.removeValue(forKey: index) }) else { return }
        let link = links[index]
        switch cut {
        case .link:
            try run(["link", "set", link.dataInterface, "up"])
        case .deaf:
            try run(["route", "del", "blackhole", "\(link.dataAddress)/32"])
        case .mute:
            try run(["-n", link.namespace, "route", "del", "blackhole", "\(redisAddress)/32"])
        case .blackhole:
            try run(["route", "del", "blackhole", "\(link.dataAddress)/32"])
            try run(["-n", link.namespace, "route", "del", "blackhole", "\(redisAddress)/32"])
        }
    }

    /// Removes the namespaces (their links go with them), the bridge and the host's blackhole
    /// routes. Safe to call twice; errors are ignored (a thing already gone is fine).
    func teardown() {
        guard !tornDown.exchange(true, ordering: .relaxed) else { return }
        for command in cleanupCommands() { _ = try? run(command) }
    }

    /// The `ip` commands that remove everything this network made, in order.
    func cleanupCommands() -> [[String]] {
        var commands: [[String]] = links.map { ["route", "del", "blackhole", "\($0.dataAddress)/32"] }
        commands += links.map { ["netns", "del", $0.namespace] }
        commands.append(["link", "del", bridge])
        return commands
    }

    /// The same cleanup as one shell script line, for a watchdog that outlives the harness.
    func cleanupScript() -> String {
        cleanupCommands().map { ([ip] + $0).joined(separator: " ") + " 2>/dev/null" }.joined(separator: "; ")
    }

    // MARK: Helpers

    /// A third octet X with neither 10.213.X.0/24 nor 10.214.X.0/24 in any address or route.
    private static func freeSubnet(ip: String, preferred: Int) throws -> Int {
        let used = ((try? output(ip, ["-4", "addr"])) ?? "") + ((try? output(ip, ["-4", "route"])) ?? "")
        for offset in 0..<230 {
            let candidate = 20 + (preferred - 20 + offset) % 230
            if !used.contains("10.213.\(candidate).") && !used.contains("10.214.\(candidate).") { return candidate }
        }
        throw ChaosError(.setupFailed, "no free 10.213.X.0/24 subnet for the chaos network")
    }

    /// Namespaces and bridges named after a harness that is no longer running.
    private static func removeLeftovers(ip: String) {
        func deadOwner(_ name: String) -> Bool {
            guard name.hasPrefix("cc") else { return false }
            let digits = name.dropFirst(2).prefix { $0.isNumber }
            guard let pid = Int32(digits), !digits.isEmpty else { return false }
            return kill(pid, 0) != 0 && errno == ESRCH
        }
        let namespaces = ((try? output(ip, ["netns", "list"])) ?? "").split(separator: "\n").compactMap { $0.split(separator: " ").first.map(String.init) }
        for namespace in namespaces where deadOwner(namespace) {
            _ = try? output(ip, ["netns", "del", namespace])
        }
        let bridges = ((try? output(ip, ["-o", "link", "show", "type", "bridge"])) ?? "").split(separator: "\n").compactMap { line -> String? in
            let fields = line.split(separator: ":", maxSplits: 2)
            return fields.count >= 2 ? fields[1].trimmingCharacters(in: .whitespaces) : nil
        }
        for bridge in bridges where deadOwner(bridge) && bridge.hasSuffix("br") {
            _ = try? output(ip, ["link", "del", bridge])
        }
    }

    @discardableResult
    private func run(_ arguments: [String]) throws -> String {
        try Self.output(ip, arguments)
    }

    /// Runs `ip arguments` and returns its output; throws with that output on a non-zero exit.
    private static func output(_ ip: String, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: ip)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        do {
            try process.run()
        } catch {
            throw ChaosError(.setupFailed, "cannot run \(ip)", underlying: error)
        }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        guard process.terminationStatus == 0 else {
            throw ChaosError(.setupFailed, "ip \(arguments.joined(separator: " ")) failed: \(text.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        return text
    }
}
