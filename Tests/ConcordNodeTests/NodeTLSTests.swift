import ConcordNode
import ConcordProcess
import ConcordTesting
import Foundation
import NIOSSL
import Testing

/// The HTTP API over TLS, with a certificate made for the test by `openssl`.
@Suite("Node TLS", .serialized)
struct NodeTLSTests {
    /// A self-signed certificate for 127.0.0.1 and its key, written to `files`.
    static func makeCertificate(in files: TemporaryFiles) async throws -> (certificate: String, key: String) {
        let certificate = files.path("cert.pem")
        let key = files.path("key.pem")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", key, "-out", certificate, "-days", "1", "-subj", "/CN=concord-test",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw TestError("openssl req failed with \(process.terminationStatus); is openssl installed?") }
        return (certificate, key)
    }

    @Test("--tls-cert/--tls-key serve HTTPS: NodeClient and the CLI trust the test CA; plain HTTP gets no answer")
    func servesHTTPS() async throws {
        let files = try TemporaryFiles()
        let (certificate, key) = try await Self.makeCertificate(in: files)
        let admin = try files.write("admin", "admin-one\n")
        try await withRedisServer { server in
            try await withNode(["--redis", server.url, "--tls-cert", certificate, "--tls-key", key, "--admin-token-file", admin]) { node async throws in
                #expect(node.output.all.contains("listening on https://"))
                var tls = TLSConfiguration.makeClientConfiguration()
                tls.trustRoots = .file(certificate)
                var configuration = NodeClient.Configuration(requestTimeout: .seconds(30))
                configuration.tls = tls
                configuration.bearerToken = "admin-one"
                let client = try NodeClient(url: "https://127.0.0.1:\(node.port)", configuration: configuration)
                #expect(try await client.set("tls", value: Array("secret value".utf8)).status == 200)
                #expect(try await client.get("tls").text == "secret value")

                // Without trusting the certificate, the handshake fails: no request goes out.
                var untrusting = NodeClient.Configuration(requestTimeout: .seconds(30))
                untrusting.tls = .makeClientConfiguration()
                await #expect(throws: NodeClientError.self) {
                    _ = try await NodeClient(url: "https://127.0.0.1:\(node.port)", configuration: untrusting).health()
                }
                // Plain HTTP to the TLS port is not answered as HTTP.
                let plain = NodeClient(port: node.port, configuration: .init(requestTimeout: .seconds(10)))
                let plainAnswer = try? await plain.health()
                #expect(plainAnswer != true)

                let environment = ["CONCORD_TOKEN": "admin-one", "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin"]
                let get = try await runConcord(["get", "tls", "--value-only", "--node", "https://127.0.0.1:\(node.port)", "--cacert", certificate], environment: environment)
                #expect(get.status == 0, "\(get.output)")
                #expect(get.output.contains("secret value"))
            }
        }
    }

    @Test("a TLS key without its certificate, or an unreadable one, stops the node with exit 64")
    func badTLSFiles() async throws {
        let files = try TemporaryFiles()
        let (certificate, _) = try await Self.makeCertificate(in: files)
        let garbage = try files.write("garbage.pem", "not a key\n")
        for (arguments, flag) in [
            (["--tls-key", garbage], "--tls-cert"),
            (["--tls-cert", certificate, "--tls-key", garbage], "--tls-key"),
            (["--tls-cert", garbage, "--tls-key", garbage], "--tls-cert"),
        ] {
            let output = OutputLog()
            let process = try SpawnedNode.launch(arguments, output: output)
            #expect(try await process.waitForExit() == 64, "\(arguments): \(output.all)")
            #expect(output.all.contains(flag), "\(arguments): \(output.all)")
        }
    }
}
