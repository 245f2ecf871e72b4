import ConcordNode
import ConcordProcess
import ConcordTesting
import Foundation
import Testing

/// Bearer tokens, checked against real `concord node` processes and the `concord` CLI.
@Suite("Node tokens", .serialized)
struct NodeAuthTests {
    @Test("read and admin tokens: 401 without a known token, 403 for the wrong scope, probes stay open")
    func scopes() async throws {
        try await withRedisServer { server in
            let files = try TemporaryFiles()
            let readTokens = try files.write("read", "# readers\nread-one\n\nread-two\n")
            let adminTokens = try files.write("admin", "admin-one\n")
            try await withNode(["--redis", server.url, "--auth-token-file", readTokens, "--admin-token-file", adminTokens]) { node async throws in
                let anonymous = node.client()
                let unauthorized = try await anonymous.get("k")
                #expect(unauthorized.status == 401)
                #expect(unauthorized.errorCode == "unauthorized")
                #expect(unauthorized.header("WWW-Authenticate")?.hasPrefix("Bearer") == true)
                #expect(try await anonymous.set("k", value: Array("v".utf8)).status == 401)
                #expect(try await anonymous.stats().status == 401)
                #expect(try await node.client(token: "read-one-but-longer").get("k").status == 401)
                #expect(try await node.client(token: "read-on").get("k").status == 401)

                // Probes and metrics carry no token.
                #expect(try await anonymous.health())
                #expect(try await anonymous.request(.GET, "/metrics").status == 200)
                let ready = await eventually { (try? await anonymous.ready()) == true }
                #expect(ready, "\(node.output.text)")

                // A read token reads, and is refused every write with 403; nothing is written.
                for token in ["read-one", "read-two"] {
                    let reader = node.client(token: token)
                    #expect(try await reader.get("k").status == 404)
                    #expect(try await reader.stats().status == 200)
                    let refused = try await reader.set("k", value: Array("v".utf8))
                    #expect(refused.status == 403)
                    #expect(refused.errorCode == "forbidden")
                    #expect(try await reader.delete("k").status == 403)
                    #expect(try await reader.invalidate(["k"]).status == 403)
                }
                #expect(try await node.client(token: "read-one").get("k").status == 404)

                // The admin token writes and reads.
                let admin = node.client(token: "admin-one")
                #expect(try await admin.set("k", value: Array("v".utf8)).status == 200)
                #expect(try await node.client(token: "read-two").get("k").text == "v")
                #expect(try await admin.invalidate(["k"]).status == 200)
                #expect(try await admin.delete("k").status == 200)
            }
        }
    }

    @Test("--metrics-token-file guards /metrics; admin tokens read it too")
    func metricsToken() async throws {
        let files = try TemporaryFiles()
        let metrics = try files.write("metrics", "scrape-me\n")
        let admin = try files.write("admin", "admin-one\n")
        try await withNode(["--redis", "redis://127.0.0.1:1", "--metrics-token-file", metrics, "--admin-token-file", admin]) { node async throws in
            #expect(try await node.client().request(.GET, "/metrics").status == 401)
            #expect(try await node.client(token: "scrape-me").request(.GET, "/metrics").status == 200)
            #expect(try await node.client(token: "admin-one").request(.GET, "/metrics").status == 200)
            // A metrics token is no read token.
            #expect(try await node.client(token: "scrape-me").get("k").status == 403)
            #expect(try await node.client().health())
        }
    }

    @Test("a non-loopback bind without tokens exits 64 naming --auth-token-file, unless allowed")
    func unauthenticatedBind() async throws {
        let output = OutputLog()
        let refused = try SpawnedNode.launch(["--bind", "0.0.0.0", "--redis", "redis://127.0.0.1:1"], output: output)
        #expect(try await refused.waitForExit() == 64)
        #expect(output.all.contains("--auth-token-file"), "\(output.all)")

        try await withNode(["--bind", "0.0.0.0", "--allow-unauthenticated", "--redis", "redis://127.0.0.1:1"]) { allowed async throws in
            #expect(try await allowed.client().health())
        }

        let files = try TemporaryFiles()
        let tokens = try files.write("admin", "admin-one\n")
        try await withNode(["--bind", "0.0.0.0", "--admin-token-file", tokens, "--redis", "redis://127.0.0.1:1"]) { guarded async throws in
            #expect(try await guarded.client().get("k").status == 401)
        }

        // An empty or missing token file is a start error too, naming its flag.
        let empty = try files.write("empty", "# nothing yet\n")
        for (file, flag) in [(empty, "--auth-token-file"), (files.path("missing"), "--auth-token-file")] {
            let log = OutputLog()
            let process = try SpawnedNode.launch(["--auth-token-file", file], output: log)
            #expect(try await process.waitForExit() == 64)
            #expect(log.all.contains(flag), "\(log.all)")
        }
    }

    @Test("concord get/set/del/invalidate send the token from --token-file or CONCORD_TOKEN")
    func cliSendsToken() async throws {
        try await withRedisServer { server in
            let files = try TemporaryFiles()
            let admin = try files.write("admin", "admin-one\n")
            let read = try files.write("read", "read-one\n")
            let clientToken = try files.write("client-token", "admin-one\n")
            try await withNode(["--redis", server.url, "--admin-token-file", admin, "--auth-token-file", read]) { node async throws in
                let url = "http://127.0.0.1:\(node.port)"

                let refused = try await runConcord(["set", "cli", "value", "--node", url])
                #expect(refused.status != 0)
                #expect(refused.output.contains("unauthorized"), "\(refused.output)")

                let set = try await runConcord(["set", "cli", "value", "--node", url, "--token-file", clientToken])
                #expect(set.status == 0, "\(set.output)")
                var environment = ProcessInfo.processInfo.environment
                environment["CONCORD_TOKEN"] = "read-one"
                let get = try await runConcord(["get", "cli", "--value-only", "--node", url], environment: environment)
                #expect(get.status == 0, "\(get.output)")
                #expect(get.output.contains("value"))
                let readerDelete = try await runConcord(["del", "cli", "--node", url], environment: environment)
                #expect(readerDelete.status != 0)
                #expect(readerDelete.output.contains("forbidden"), "\(readerDelete.output)")
                environment["CONCORD_TOKEN"] = "admin-one"
                #expect(try await runConcord(["invalidate", "cli", "--node", url], environment: environment).status == 0)
                #expect(try await runConcord(["del", "cli", "--node", url], environment: environment).status == 0)
            }
        }
    }

    @Test("tokens are compared whole: prefixes, extensions and other lengths never match")
    func constantTimeComparison() {
        var tokens = AccessTokens()
        tokens.add(["secret-token", "other"], scopes: .read, protecting: .read)
        #expect(tokens.scopes(of: "secret-token") == .read)
        #expect(tokens.scopes(of: "other") == .read)
        for guess in ["", "s", "secret-toke", "secret-tokenX", "secret-token\0", "Secret-token", "other "] {
            #expect(tokens.scopes(of: guess).isEmpty, "\(guess)")
        }
    }
}
