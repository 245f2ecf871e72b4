import NIOCore
import NIOSSL
import NIOTLS

/// Turns `RedisConfiguration.TLS` into a swift-nio-ssl context, and swift-nio-ssl's failures into `RedisError` codes.
///
/// The context is built again for each connection, so certificates rotated on disk are picked
/// up at the next reconnect without restarting the process.
enum RedisTLSContext {
    static func makeContext(_ tls: RedisConfiguration.TLS) throws(RedisError) -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        if tls.insecureSkipVerify {
            configuration.certificateVerification = .none
        } else if let caFile = tls.caFile {
            do {
                configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(caFile))
            } catch {
                throw RedisError(.tlsConfiguration, "cannot load the CA file '\(caFile)'", underlying: error)
            }
        }
        switch (tls.certificateFile, tls.privateKeyFile) {
        case (nil, nil):
            break
        case (let certificateFile?, let keyFile?):
            do {
                configuration.certificateChain = try NIOSSLCertificate.fromPEMFile(certificateFile).map { .certificate($0) }
            } catch {
                throw RedisError(.tlsConfiguration, "cannot load the client certificate '\(certificateFile)'", underlying: error)
            }
            do {
                configuration.privateKey = .privateKey(try NIOSSLPrivateKey(file: keyFile, format: .pem))
            } catch {
                throw RedisError(.tlsConfiguration, "cannot load the client private key '\(keyFile)'", underlying: error)
            }
        case (_?, nil):
            throw RedisError(.tlsConfiguration, "a client certificate needs its private key (--tls-key-file)")
        case (nil, _?):
            throw RedisError(.tlsConfiguration, "a client private key needs its certificate (--tls-cert-file)")
        }
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch {
            throw RedisError(.tlsConfiguration, "invalid TLS configuration", underlying: error)
        }
    }

    /// The client handler for a connection to `host`. An IP address is not sent as SNI (TLS
    /// forbids it); swift-nio-ssl then checks the certificate against the peer's address.
    static func makeHandler(_ tls: RedisConfiguration.TLS, context: NIOSSLContext, host: String) throws(RedisError) -> NIOSSLClientHandler {
        let name = tls.serverName ?? (isIPAddress(host) ? nil : host)
        do {
            return try NIOSSLClientHandler(context: context, serverHostname: name)
        } catch {
            throw RedisError(.tlsConfiguration, "cannot use '\(name ?? host)' as the TLS server name", underlying: error)
        }
    }

    static func isIPAddress(_ host: String) -> Bool {
        (try? SocketAddress(ipAddress: host, port: 0)) != nil
    }

    /// The `RedisError` for a failure found anywhere in `error`'s chain of underlying errors, if
    /// it is a TLS failure; nil otherwise.
    static func classify(_ error: any Error, endpoint: String) -> RedisError? {
        var current: (any Error)? = error
        while let candidate = current {
            if let mapped = classifyOne(candidate, endpoint: endpoint) { return mapped }
            current = (candidate as? RedisError)?.underlying
        }
        return nil
    }

    private static func classifyOne(_ error: any Error, endpoint: String) -> RedisError? {
        if let extra = error as? NIOSSLExtraError, extra == .failedToValidateHostname {
            return RedisError(
                .tlsHostnameMismatch, "the certificate of \(endpoint) does not name the host connected to (set a server name if it differs)",
                underlying: error)
        }
        // A failed handshake is a NIOSSLError; a TLS alert after it (TLS 1.3 refuses a client
        // certificate after the client's side finished) is a BoringSSLError from a read.
        guard error is NIOSSLError || error is BoringSSLError else { return nil }
        // BoringSSL reports the reason as text in its error stack; the reason names are stable.
        let text = "\(error)"
        if text.contains("CERTIFICATE_VERIFY_FAILED") {
            return RedisError(.tlsUntrustedCertificate, "the certificate of \(endpoint) is not signed by a trusted CA", underlying: error)
        }
        if text.contains("CERTIFICATE_REQUIRED") || text.contains("ALERT_BAD_CERTIFICATE") || text.contains("ALERT_UNKNOWN_CA")
            || text.contains("ALERT_CERTIFICATE_EXPIRED")
        {
            return RedisError(
                .tlsClientCertificateRejected,
                "\(endpoint) refused the TLS handshake for the client certificate (mutual TLS: missing, untrusted or expired)",
                underlying: error)
        }
        return RedisError(.tlsHandshakeFailed, "TLS with \(endpoint) failed (does it speak TLS on this port?)", underlying: error)
    }
}

/// Completes a promise when the TLS handshake finishes, or fails it with the handshake's error,
/// so `RedisConnection.connect` can tell a slow handshake from a slow Redis.
final class TLSHandshakeWaiter: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    private let promise: EventLoopPromise<Void>

    init(promise: EventLoopPromise<Void>) {
        self.promise = promise
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted = event as? TLSUserEvent {
            promise.succeed()
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        promise.fail(error)
        context.fireErrorCaught(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.fail(ChannelError.eof)
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        promise.fail(ChannelError.eof)
    }
}
