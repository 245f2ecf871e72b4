// libFuzzer target: the RESP front end's request reader (`RESPRequestReader`). The input is
// read whole and again in two pieces, the second time taking in place (`nextInPlace`) every
// command whose first argument has an odd length, as the front end takes its reads, and the
// rest through `next()`; both must give the same commands and fail at the same point, so a
// command split across reads, or read in place, parses as it does in one read. Anything may be
// rejected with a protocol error; nothing may trap.

/// What one way of reading produced: the commands, and whether it stopped at a protocol error.
private func readAll(_ pieces: [ArraySlice<UInt8>], inPlace: Bool) -> (commands: [[[UInt8]]], failed: Bool) {
    let reader = RESPRequestReader(maxArguments: 64, maxBufferedBytes: 1 << 20)
    var commands: [[[UInt8]]] = []
    do {
        for piece in pieces {
            try reader.feed(Array(piece))
            while true {
                let taken: [[UInt8]]? = inPlace ? reader.nextInPlace { arguments in
                    guard arguments[0].count % 2 == 1 else { return nil }
                    return (0..<arguments.count).map { Array(arguments[$0]) }
                } : nil
                if let taken {
                    commands.append(taken)
                } else if let command = try reader.next() {
                    commands.append(command)
                } else {
                    break
                }
                if commands.count > 100_000 { return (commands, false) }
            }
        }
    } catch {
        return (commands, true)
    }
    return (commands, false)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func respRequestFuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let split = bytes.isEmpty ? 0 : Int(bytes[0]) % (bytes.count + 1)
    let whole = readAll([bytes[...]], inPlace: false)
    let pieces = readAll([bytes[..<split], bytes[split...]], inPlace: true)
    if whole.commands != pieces.commands || whole.failed != pieces.failed {
        fatalError("split at \(split) read \(pieces.commands.count) commands (failed: \(pieces.failed)), whole \(whole.commands.count) (failed: \(whole.failed))")
    }
    return 0
}
