import Concord

/// One row of the origin: the value's bytes and the version the writer gave it.
public struct OriginRecord: Sendable, Equatable {
    public var value: [UInt8]
    public var version: Int64

    public init(value: [UInt8], version: Int64) {
        self.value = value
        self.version = version
    }
}
