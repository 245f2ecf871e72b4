extension RedisConfiguration {
    /// TLS settings of a `rediss://` connection; the defaults verify the server against the system's trust roots.
    public struct TLS: Sendable, Equatable {
        /// PEM file of the certificate authorities to trust; nil trusts the system's roots.
        public var caFile: String?
        /// PEM certificate (chain) presented to the server, for mutual TLS; needs `privateKeyFile`.
        public var certificateFile: String?
        /// PEM private key of `certificateFile`.
        public var privateKeyFile: String?
        /// The name sent in SNI and checked against the server's certificate, when it differs
        /// from the host connected to (a server reached by IP, or through a tunnel).
        public var serverName: String?
        /// Accepts any server certificate: encryption without authentication. Only for tests and
        /// first set-ups; the client logs a warning on start when it is set.
        public var insecureSkipVerify: Bool

        public init(
            caFile: String? = nil,
            certificateFile: String? = nil,
            privateKeyFile: String? = nil,
            serverName: String? = nil,
            insecureSkipVerify: Bool = false
        ) {
            self.caFile = caFile
            self.certificateFile = certificateFile
            self.privateKeyFile = privateKeyFile
            self.serverName = serverName
            self.insecureSkipVerify = insecureSkipVerify
        }
    }
}
