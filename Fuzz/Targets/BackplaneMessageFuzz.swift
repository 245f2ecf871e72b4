// libFuzzer target: the backplane message decoder (`BackplaneMessage.decode`), with and
// without an authenticator. Anything may be rejected; nothing may trap, and what decodes must
// survive a re-encode unchanged.

/// A stand-in authenticator: the fuzzer must reach the tag check without cryptography.
struct FuzzAuthenticator: MessageAuthenticator {
    func tag(for bytes: ArraySlice<UInt8>) -> [UInt8] {
        var sum: UInt8 = 0x5A
        for byte in bytes { sum = sum &* 31 &+ byte }
        return [sum, sum ^ 0xFF]
    }

    func isValid(tag: ArraySlice<UInt8>, for bytes: ArraySlice<UInt8>) -> Bool {
        Array(tag) == self.tag(for: bytes)
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func backplaneMessageFuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    for maxKeyBytes in [Int.max, 16] {
        if let message = try? BackplaneMessage.decode(bytes, maxKeyBytes: maxKeyBytes) {
            let again = try? BackplaneMessage.decode(message.encoded(), maxKeyBytes: maxKeyBytes)
            precondition(again == message, "a decoded message does not survive a re-encode")
            precondition(message.key.utf8.count <= maxKeyBytes, "a key longer than the bound was accepted")
        }
    }
    let authenticator = FuzzAuthenticator()
    if let message = try? BackplaneMessage.decode(bytes, authenticator: authenticator) {
        precondition(message.isAuthenticated, "a message passed the key check without being authenticated")
        let again = try? BackplaneMessage.decode(message.encoded(authenticator: authenticator), authenticator: authenticator)
        precondition(again == message, "a signed message does not survive a re-encode")
    }
    return 0
}
