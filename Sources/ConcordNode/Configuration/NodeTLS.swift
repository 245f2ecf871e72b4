import NIOSSL

/// The TLS settings of a node's HTTP API, read from `--tls-cert` and `--tls-key` (PEM).
enum NodeTLS {
    /// The server configuration, or nil when TLS is off. Throws, naming the flag, for a file
    /// that cannot be read or parsed; key material never appears in the message.
    static func serverConfiguration(_ configuration: NodeConfiguration) throws(NodeConfigurationError) -> TLSConfiguration? {
        guard let certificatePath = configuration.tlsCertificateFile, let keyPath = configuration.tlsKeyFile else { return nil }
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMFile(certificatePath)
        } catch {
            throw failure(.tlsCert, "the file '\(certificatePath)' is not a readable PEM certificate chain")
        }
        guard !chain.isEmpty else { throw failure(.tlsCert, "the file '\(certificatePath)' holds no certificate") }
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(file: keyPath, format: .pem)
        } catch {
            throw failure(.tlsKey, "the file '\(keyPath)' is not a readable PEM private key")
        }
        var tls = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        tls.minimumTLSVersion = .tlsv12
        return tls
    }

    private static func failure(_ option: NodeOption, _ message: String) -> NodeConfigurationError {
        NodeConfigurationError(.unreadableFile, option: option.name, source: .combination, value: nil, message: message)
    }
}
