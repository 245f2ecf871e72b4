/// A command's arguments as they lie in the request reader's buffer, for the commands the
/// front end answers without copying them out (`RESPRequestReader.nextInPlace`). Valid only
/// inside the call it is passed to.
struct RESPArguments {
    /// The reader's buffer.
    let bytes: UnsafeBufferPointer<UInt8>
    /// Where each argument lies in `bytes`.
    let spans: UnsafeBufferPointer<Range<Int>>

    var count: Int { spans.count }

    /// The bytes of argument `index`.
    subscript(index: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: bytes[spans[index]]))
    }

    /// Whether argument `index` is `upperCaseName` in any case (command names are ASCII).
    func isName(_ index: Int, _ upperCaseName: StaticString) -> Bool {
        let span = spans[index]
        guard span.count == upperCaseName.utf8CodeUnitCount else { return false }
        let name = upperCaseName.utf8Start
        for offset in 0..<span.count {
            let byte = bytes[span.lowerBound + offset]
            if (byte >= 97 && byte <= 122 ? byte - 32 : byte) != name[offset] { return false }
        }
        return true
    }
}
