import Foundation
import GRDB

/// The harness's side of the origin: the SQLite file nodes load keys from, table
/// `items(key TEXT PRIMARY KEY, value BLOB, version INTEGER)`. The harness is its only writer;
/// each write raises a key's version by one and stores that version's value (`v<version>`,
/// padded to the size `sizes` gives it), so any read of the key, from any tier of any node,
/// tells which version it saw.
package final class OriginStore: Sendable {
    package let path: String
    /// The size of each key's value at each version.
    package let sizes: ValueSizes
    private let pool: DatabasePool

    /// Creates (or replaces) the file and gives every key version 1.
    package static func create(path: String, keys: [String], sizes: ValueSizes = .compact) throws -> OriginStore {
        for suffix in ["", "-wal", "-shm"] {
            try? FileManager.default.removeItem(atPath: path + suffix)
        }
        let store = try OriginStore(path: path, sizes: sizes)
        try store.pool.write { db in
            try db.execute(sql: "CREATE TABLE IF NOT EXISTS items(key TEXT PRIMARY KEY, value BLOB, version INTEGER)")
            for key in keys {
                try db.execute(
                    sql: "INSERT INTO items(key, value, version) VALUES (?, ?, 1)",
                    arguments: [key, Data(sizes.value(key: key, version: 1))])
            }
        }
        return store
    }

    private init(path: String, sizes: ValueSizes) throws {
        self.path = path
        self.sizes = sizes
        var configuration = Configuration()
        // Nodes read the same file; wait for their locks rather than failing a write.
        configuration.busyMode = .timeout(5)
        configuration.label = "concord.chaos.origin"
        do {
            // A pool puts the file in WAL mode, so node reads and harness writes do not block each other.
            pool = try DatabasePool(path: path, configuration: configuration)
        } catch {
            throw ChaosError(.setupFailed, "cannot open the origin at \(path)", underlying: error)
        }
    }

    /// The value stored for a version: what a node returns for it.
    package static func value(version: Int64) -> [UInt8] {
        Array("v\(version)".utf8)
    }

    /// The version a value encodes (`v12` → 12); nil for anything else.
    package static func version(of body: [UInt8]) -> Int64? {
        guard body.count >= 2, body.count <= 21, body[0] == UInt8(ascii: "v") else { return nil }
        var version: Int64 = 0
        for byte in body.dropFirst() {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            let (shifted, overflow1) = version.multipliedReportingOverflow(by: 10)
            let (added, overflow2) = shifted.addingReportingOverflow(Int64(byte - UInt8(ascii: "0")))
            guard !overflow1, !overflow2 else { return nil }
            version = added
        }
        return version
    }

    /// Raises the key's version by one and returns the new version (the row is created at
    /// version 1 when missing).
    package func bump(_ key: String) async throws -> Int64 {
        try await bump([key])[key]!
    }

    /// Raises each key's version by one in one transaction; returns the new versions.
    package func bump(_ keys: [String]) async throws -> [String: Int64] {
        let sizes = self.sizes
        return try await pool.write { db in
            var versions: [String: Int64] = [:]
            for key in keys {
                let current = try Int64.fetchOne(db, sql: "SELECT version FROM items WHERE key = ?", arguments: [key]) ?? 0
                let next = current + 1
                try Self.store(db, key: key, version: next, sizes: sizes)
                versions[key] = next
            }
            return versions
        }
    }

    /// Raises every key to one new version, above every key's current one, in one transaction
    /// (what a clear of the cache makes the next read of any key see); returns it.
    package func bumpAll() async throws -> Int64 {
        let sizes = self.sizes
        return try await pool.write { db in
            let next = (try Int64.fetchOne(db, sql: "SELECT MAX(version) FROM items") ?? 0) + 1
            for key in try String.fetchAll(db, sql: "SELECT key FROM items") {
                try Self.store(db, key: key, version: next, sizes: sizes)
            }
            return next
        }
    }

    private static func store(_ db: Database, key: String, version: Int64, sizes: ValueSizes) throws {
        try db.execute(
            sql: """
            INSERT INTO items(key, value, version) VALUES (?, ?, ?)
            ON CONFLICT(key) DO UPDATE SET value = excluded.value, version = excluded.version
            """,
            arguments: [key, Data(sizes.value(key: key, version: version)), version])
    }

    /// The key's current version, nil if it has no row.
    package func version(of key: String) async throws -> Int64? {
        try await pool.read { db in
            try Int64.fetchOne(db, sql: "SELECT version FROM items WHERE key = ?", arguments: [key])
        }
    }
}
