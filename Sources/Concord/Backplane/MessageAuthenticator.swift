/// Signs and checks backplane messages and log entries, so a node can tell a message written by
/// a node holding the shared key from one anybody with `PUBLISH` rights could have sent.
///
/// `ConcordRedis` implements it with HMAC-SHA256 (`HMACMessageAuthenticator`); the cache only
/// calls these two methods, so the `Concord` module itself needs no cryptography library.
public protocol MessageAuthenticator: Sendable {
    /// The authentication tag for `bytes`, made with the current key.
    func tag(for bytes: ArraySlice<UInt8>) -> [UInt8]
    /// Whether `tag` was made for `bytes` with one of the accepted keys (two during a rotation).
    func isValid(tag: ArraySlice<UInt8>, for bytes: ArraySlice<UInt8>) -> Bool
}
