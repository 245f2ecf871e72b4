import ConcordNode
import ConcordProcess
import ConcordTesting
import Foundation
import Testing

/// The deploy files: nodes run against the Redis ACL the Kubernetes manifest ships, and the
/// hardening the unit and manifests promise is there.
@Suite("Node deploy files", .serialized)
struct NodeDeployTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func text(_ path: String) throws -> String {
        try String(contentsOf: repository.appendingPathComponent(path), encoding: .utf8)
    }

    @Test("two nodes work through the manifest's ACL user, limited to ~concord:* and &concord:*")
    func nodesRunUnderTheManifestACL() async throws {
        let manifest = try Self.text("deploy/kubernetes/redis.yaml")
        let line = try #require(manifest.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.first { $0.hasPrefix("user concord ") })
        #expect(line.contains("~concord:*") && line.contains("&concord:*") && line.contains("-@dangerous"))
        let password = "acl-\(UUID().uuidString)"
        let user = line.replacingOccurrences(of: ">CHANGE-ME-redis-password", with: ">" + password)
        let options = RedisServer.Options(requirePassword: "operator-\(UUID().uuidString)", extraConfig: [user])
        try await withRedisServer(options) { server in
            let files = try TemporaryFiles()
            let passwordFile = try files.write("redis-password", password + "\n")
            let arguments = ["--redis", server.url, "--redis-user", "concord", "--redis-password-file", passwordFile]
            try await withNode(arguments, name: "acl-1") { one async throws in
                try await withNode(arguments, name: "acl-2") { two async throws in
                    for node in [one, two] {
                        #expect(await eventually { (try? await node.client().ready()) == true }, "\(node.output.all)")
                    }
                    #expect(try await one.client().set("acl", value: Array("one".utf8)).status == 200)
                    let read = try await two.client().get("acl")
                    #expect(read.text == "one")
                    #expect(read.source == "distributed")
                    let changed = try await two.client().set("acl", value: Array("two".utf8))
                    let propagated = try await eventually { try await one.client().get("acl").version == changed.version }
                    #expect(propagated, "\(one.output.all)")
                    #expect(!one.output.all.contains("NOPERM"), "\(one.output.all)")
                }
            }
        }
    }

    @Test("the systemd unit bounds memory and system calls; the env file is installed 0640; Kubernetes uses a Secret and a NetworkPolicy")
    func hardening() throws {
        let unit = try Self.text("deploy/systemd/concord-node.service")
        for directive in ["MemoryMax=", "UMask=0077", "SystemCallFilter=@system-service", "install -m 0640"] {
            #expect(unit.contains(directive), "\(directive)")
        }
        #expect(!unit.contains("-m 0644 deploy/systemd/node.env"))
        let node = try Self.text("deploy/kubernetes/concord-node.yaml")
        #expect(node.contains("kind: Secret"))
        #expect(node.contains("kind: NetworkPolicy"))
        #expect(node.contains("concord.io/client"))
        // No credential in the ConfigMap: the Redis URL there has no user info.
        let configMap = node.components(separatedBy: "kind: ConfigMap")[1].components(separatedBy: "---")[0]
        #expect(!configMap.contains("@"))
        #expect(try !Self.text("deploy/systemd/node.env").contains("@"))
    }
}
