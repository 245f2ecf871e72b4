import Concord
import Crypto

/// Signs backplane messages and log entries with HMAC-SHA256 under a shared key, and accepts
/// tags made with any of its keys, so a key can be rotated without a flag day: deploy
/// `[new, old]` everywhere (signing with the new one), then `[new]`.
public struct HMACMessageAuthenticator: MessageAuthenticator {
    private let keys: [SymmetricKey]

    /// - Parameter keys: the signing key first, then the other keys still accepted. Each is at
    ///   least 16 bytes (32 recommended: the size of the HMAC-SHA256 output).
    public init(keys: [[UInt8]]) throws {
        guard !keys.isEmpty else { throw RedisError(.invalidArgument, "a backplane key set needs at least one key") }
        guard keys.count <= 2 else { throw RedisError(.invalidArgument, "at most two backplane keys are accepted at once (current and previous)") }
        for key in keys where key.count < 16 {
            throw RedisError(.invalidArgument, "a backplane key is \(key.count) bytes; the minimum is 16")
        }
        self.keys = keys.map { SymmetricKey(data: $0) }
    }

    public func tag(for bytes: ArraySlice<UInt8>) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: bytes, using: keys[0]))
    }

    public func isValid(tag: ArraySlice<UInt8>, for bytes: ArraySlice<UInt8>) -> Bool {
        keys.contains { HMAC<SHA256>.isValidAuthenticationCode(tag, authenticating: bytes, using: $0) }
    }
}
