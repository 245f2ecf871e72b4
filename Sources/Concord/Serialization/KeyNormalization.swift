/// Keys are compared by their bytes in Redis but as `String`s (canonical equivalence) in L1, in
/// the flights and in the pending queue, where `"e\u{301}"` equals `"\u{E9}"`. Admitting only
/// keys in Unicode Normalization Form C makes the two rules one: two NFC keys are equal as
/// strings exactly when their UTF-8 bytes are.
enum KeyNormalization {
    /// Whether `key` is in NFC. ASCII keys (nearly all) are answered by a scan of their bytes,
    /// eight at a time; only others are normalized to compare.
    @inline(__always)
    static func isNFC(_ key: String) -> Bool {
        let ascii = key.utf8.withContiguousStorageIfAvailable(isASCII) ?? key.utf8.allSatisfy { $0 < 0x80 }
        if ascii { return true }
        return key.utf8.elementsEqual(key._nfcCodeUnits)
    }

    @inline(__always)
    static func isASCII(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let base = bytes.baseAddress else { return true }
        var index = 0
        var high: UInt64 = 0
        while index + 8 <= bytes.count {
            high |= UnsafeRawPointer(base + index).loadUnaligned(as: UInt64.self)
            index += 8
        }
        while index < bytes.count {
            high |= UInt64(base[index])
            index += 1
        }
        return high & 0x8080_8080_8080_8080 == 0
    }
}
