#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Turns values into bytes for L2 and back.
public protocol CacheSerializer: Sendable {
    func serialize<Value: Encodable>(_ value: Value) throws -> [UInt8]
    func deserialize<Value: Decodable>(_ type: Value.Type, from bytes: [UInt8]) throws -> Value
}
