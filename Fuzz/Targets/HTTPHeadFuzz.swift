// libFuzzer target: the HTTP head scanner in front of the node's HTTP decoder
// (`HTTPHeadScanner`). The first byte of the input picks the head bound, the rest is scanned
// whole and cut at every length. A framed head must lie within the bytes and the bound, with
// its target and Authorization value inside it; every cut shorter than the head must be
// `incomplete`, and every cut at or past it must frame the same head, so a request split across
// reads frames as it does in one read; a cut that is unframeable must stay so however the bytes
// go on. Nothing may trap.

@_cdecl("LLVMFuzzerTestOneInput")
public func httpHeadFuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0, size <= 4096 else { return 0 }
    let maxHeadBytes = 16 + Int(data[0]) * 8
    let bytes = UnsafeRawBufferPointer(start: data + 1, count: size - 1)
    func scan(_ count: Int) -> HTTPHeadScanner.Scan {
        HTTPHeadScanner.scan(UnsafeRawBufferPointer(rebasing: bytes[..<count]), maxHeadBytes: maxHeadBytes)
    }
    let whole = scan(bytes.count)
    switch whole {
    case .incomplete:
        precondition(bytes.count < maxHeadBytes, "incomplete past the bound")
    case .unframeable:
        break
    case .request(let head):
        precondition(head.length > 0 && head.length <= bytes.count && head.length <= maxHeadBytes, "head length \(head.length)")
        precondition(head.target.lowerBound > 0 && head.target.upperBound < head.length && !head.target.isEmpty, "target \(head.target)")
        if let authorization = head.authorization {
            precondition(authorization.lowerBound > head.target.upperBound && authorization.upperBound < head.length, "authorization")
        }
        precondition(head.bodyLength >= 0 && (!head.isPlainGet || head.bodyLength == 0), "body \(head.bodyLength)")
    }
    var sawUnframeable = false
    for count in 0...bytes.count {
        let cut = scan(count)
        switch whole {
        case .request(let head) where count >= head.length:
            precondition(cut == whole, "cut at \(count) frames differently")
        default:
            if case .request = cut { preconditionFailure("cut at \(count) framed a head the whole input does not") }
        }
        if sawUnframeable { precondition(cut == .unframeable, "unframeable at a shorter cut, not at \(count)") }
        if cut == .unframeable { sawUnframeable = true }
        if case .incomplete = cut { precondition(count < maxHeadBytes, "incomplete past the bound") }
    }
    return 0
}
