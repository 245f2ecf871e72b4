#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// JSON through Foundation's coder: the default, readable from any language. Keys are sorted,
/// so equal values always serialize to equal bytes.
public struct JSONCacheSerializer: CacheSerializer {
    public init() {}

    public func serialize<Value: Encodable>(_ value: Value) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return Array(try encoder.encode(value))
    }

    public func deserialize<Value: Decodable>(_ type: Value.Type, from bytes: [UInt8]) throws -> Value {
        try JSONDecoder().decode(type, from: Data(bytes))
    }
}

/// Chooses the byte form of a value: raw bytes and strings pass through untouched (no JSON
/// quoting, no copy for `[UInt8]`), everything else goes through the configured serializer.
struct ValueCodec: Sendable {
    let serializer: any CacheSerializer

    func encode<Value: Encodable>(_ value: Value) throws -> [UInt8] {
        if let bytes = value as? [UInt8] { return bytes }
        if let string = value as? String { return Array(string.utf8) }
        do {
            return try serializer.serialize(value)
        } catch {
            throw CacheError(.serializationFailed, "could not serialize a value of type \(Value.self)", underlying: error)
        }
    }

    func decode<Value: Decodable>(_ type: Value.Type, from bytes: [UInt8]) throws -> Value {
        if Value.self == [UInt8].self { return bytes as! Value }
        if Value.self == String.self { return String(decoding: bytes, as: UTF8.self) as! Value }
        do {
            return try serializer.deserialize(type, from: bytes)
        } catch {
            throw CacheError(.serializationFailed, "could not deserialize a value of type \(Value.self)", underlying: error)
        }
    }
}
