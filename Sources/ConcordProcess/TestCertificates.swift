import ConcordRedis
import Foundation

/// A throwaway certificate authority with server and client certificates, made with the
/// `openssl` command for a test, a benchmark or a local TLS set-up, plus a second CA that
/// signed nothing here (to test distrust).
///
/// The server certificate names `localhost` and `127.0.0.1`; the client certificate is for
/// mutual TLS. Keys are P-256, so generating all of it takes a few milliseconds.
public struct TestCertificates: Sendable {
    public let directory: URL
    public var caFile: String { path("ca.crt") }
    public var serverCertificateFile: String { path("server.crt") }
    public var serverKeyFile: String { path("server.key") }
    public var clientCertificateFile: String { path("client.crt") }
    public var clientKeyFile: String { path("client.key") }
    /// A server certificate from the same CA that names only `cache.internal` (no address), for
    /// checking host names: reached as 127.0.0.1 it must fail unless the server name is given.
    public var namedServerCertificateFile: String { path("named-server.crt") }
    public var namedServerKeyFile: String { path("named-server.key") }
    /// The name in `namedServerCertificateFile`.
    public static let namedServerName = "cache.internal"
    /// A CA that signed none of these certificates: trusting only it must fail verification.
    public var untrustedCAFile: String { path("other-ca.crt") }

    private func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    /// Client settings that trust this CA, without a client certificate.
    public var clientTLS: RedisConfiguration.TLS { .init(caFile: caFile) }

    /// Client settings that trust this CA and present the client certificate (mutual TLS).
    public var mutualClientTLS: RedisConfiguration.TLS {
        .init(caFile: caFile, certificateFile: clientCertificateFile, privateKeyFile: clientKeyFile)
    }

    /// Generates a new CA and certificates in a new temp directory (or in `directory`).
    public static func generate(in directory: URL? = nil) async throws -> TestCertificates {
        let directory = directory ?? FileManager.default.temporaryDirectory.appendingPathComponent("concord-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let certificates = TestCertificates(directory: directory)
        let key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

        try await openssl(["req", "-x509"] + key + ["-keyout", "ca.key", "-out", "ca.crt", "-days", "3", "-subj", "/CN=Concord Test CA"], in: directory)
        try await openssl(["req", "-x509"] + key + ["-keyout", "other-ca.key", "-out", "other-ca.crt", "-days", "3", "-subj", "/CN=Concord Other CA"], in: directory)

        try "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"
            .write(to: directory.appendingPathComponent("server.ext"), atomically: true, encoding: .utf8)
        try "extendedKeyUsage=clientAuth\n".write(to: directory.appendingPathComponent("client.ext"), atomically: true, encoding: .utf8)
        try "subjectAltName=DNS:\(namedServerName)\nextendedKeyUsage=serverAuth\n"
            .write(to: directory.appendingPathComponent("named-server.ext"), atomically: true, encoding: .utf8)
        for name in ["server", "client", "named-server"] {
            try await openssl(["req"] + key + ["-keyout", "\(name).key", "-out", "\(name).csr", "-subj", "/CN=concord-\(name)"], in: directory)
            try await openssl(
                [
                    "x509", "-req", "-in", "\(name).csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                    "-out", "\(name).crt", "-days", "3", "-extfile", "\(name).ext",
                ], in: directory)
        }
        return certificates
    }

    /// Removes the directory and every key in it.
    public func remove() {
        try? FileManager.default.removeItem(at: directory)
    }

    /// Runs openssl with every path made absolute under `directory` (the helper runs in this
    /// process's working directory).
    private static func openssl(_ arguments: [String], in directory: URL) async throws {
        let absolute = arguments.map { argument in
            argument.hasSuffix(".key") || argument.hasSuffix(".crt") || argument.hasSuffix(".csr") || argument.hasSuffix(".ext")
                ? directory.appendingPathComponent(argument).path : argument
        }
        let output: HelperProgram.Output
        do {
            output = try await HelperProgram.run("/usr/bin/openssl", absolute, timeout: .seconds(30))
        } catch {
            throw RedisServerError("cannot run openssl (install the openssl package): \(error)")
        }
        guard output.status == 0 else {
            throw RedisServerError("openssl \(arguments.first ?? "") failed: \(output.standardError)")
        }
    }
}

extension RedisServer.Options.TLS {
    /// The server side of `certificates`.
    public init(_ certificates: TestCertificates, requireClientCertificates: Bool = false) {
        self.init(
            certificateFile: certificates.serverCertificateFile, keyFile: certificates.serverKeyFile,
            caFile: certificates.caFile, requireClientCertificates: requireClientCertificates)
    }
}
