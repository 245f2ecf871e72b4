import Foundation
import GRDB

/// An origin in a SQLite file, table `items(key TEXT PRIMARY KEY, value BLOB, version INTEGER)`,
/// read through a GRDB `DatabasePool`. WAL mode lets other processes (the chaos harness) write
/// rows while nodes read, without readers and the writer blocking each other.
public final class SQLiteOrigin: Origin {
    public let path: String
    private let pool: DatabasePool

    /// Opens (or creates) the file and creates the table when it is missing.
    public init(path: String) throws {
        self.path = path
        var configuration = Configuration()
        // Several nodes and a writer share the file; wait for locks instead of failing at once.
        configuration.busyMode = .timeout(5)
        configuration.label = "concord.origin"
        pool = try DatabasePool(path: path, configuration: configuration)
        try pool.write { db in
            try db.execute(sql: "CREATE TABLE IF NOT EXISTS items(key TEXT PRIMARY KEY, value BLOB, version INTEGER)")
        }
    }

    public func load(_ key: String) async throws -> OriginRecord? {
        try await pool.read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT value, version FROM items WHERE key = ?", arguments: [key]) else {
                return nil
            }
            // A NULL value is an empty value, and a NULL version is 0: rows written by hand
            // with sqlite3 often leave them out.
            let data: Data? = row["value"]
            let version: Int64? = row["version"]
            return OriginRecord(value: data.map { [UInt8]($0) } ?? [], version: version ?? 0)
        }
    }

    /// Inserts or replaces a row (for tests, tools and the chaos harness).
    public func store(_ key: String, value: [UInt8], version: Int64) async throws {
        try await pool.write { db in
            try db.execute(
                sql: """
                INSERT INTO items(key, value, version) VALUES (?, ?, ?)
                ON CONFLICT(key) DO UPDATE SET value = excluded.value, version = excluded.version
                """,
                arguments: [key, Data(value), version]
            )
        }
    }

    /// Deletes a row; no error when there is none.
    public func delete(_ key: String) async throws {
        try await pool.write { db in
            try db.execute(sql: "DELETE FROM items WHERE key = ?", arguments: [key])
        }
    }
}
