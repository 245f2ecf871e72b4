// libFuzzer target: the L2 envelope decoder (`DistributedEntry.decode`) and the arithmetic a
// read does on what it decodes. Anything may be rejected; nothing may trap.

@_cdecl("LLVMFuzzerTestOneInput")
public func entryEnvelopeFuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let entry = try? DistributedEntry.decode(bytes) else { return 0 }
    let again = try? DistributedEntry.decode(entry.encoded())
    precondition(again == entry, "a decoded entry does not survive a re-encode")
    // What a read computes from the envelope's numbers, at both ends of the wall clock.
    for wall in [Int64.min, 0, 1_800_000_000_000, Int64.max] {
        let remaining = Duration.milliseconds(Saturating.difference(entry.logicalExpiryMilliseconds, wall))
        _ = CacheInstant(nanoseconds: 0) + remaining
        _ = Saturating.difference(wall, entry.version.milliseconds)
    }
    _ = CacheVersion(orderedText: entry.version.orderedText)
    return 0
}
