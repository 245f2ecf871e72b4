import CHiredis

// libFuzzer target: the RESP reader (hiredis's `redisReader` and the conversion to
// `RESPValue`), fed the input in two pieces so replies split across reads are covered too.
// Anything may be rejected with a protocol error; nothing may trap.

@_cdecl("LLVMFuzzerTestOneInput")
public func respReaderFuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let split = bytes.isEmpty ? 0 : Int(bytes[0]) % (bytes.count + 1)
    guard let reader = try? RESPReader() else { return 0 }
    do {
        try reader.feed(Array(bytes[..<split]))
        while try reader.next() != nil {}
        try reader.feed(Array(bytes[split...]))
        var replies = 0
        while let value = try reader.next() {
            _ = value.bytes
            replies += 1
            if replies > 100_000 { break }
        }
    } catch {
        // A protocol error is the expected answer to garbage.
    }
    return 0
}
