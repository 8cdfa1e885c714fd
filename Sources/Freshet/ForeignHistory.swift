import Foundation

/// Another migration tool's record of what it applied: golang-migrate's `schema_migrations (version, dirty)`
/// or dbmate's `schema_migrations (version)`.
public struct ForeignHistory: Sendable {
    public enum Tool: String, Sendable {
        case golangMigrate = "golang-migrate"
        case dbmate
    }

    public var tool: Tool
    /// The table's name as PostgreSQL prints it (quoted where needed).
    public var table: String
    /// golang-migrate: its one current version, if any; dbmate: every applied version.
    public var versions: [Int64]
    /// golang-migrate's flag for a migration that failed halfway.
    public var dirty: Bool

    public var recordsMigrations: Bool { !versions.isEmpty }

    /// What the table says, in a few words.
    public var state: String {
        switch tool {
        case .golangMigrate:
            return versions.first.map { "is at version \($0)\(dirty ? " (dirty)" : "")" } ?? "records no version"
        case .dbmate:
            return "records \(versions.count) applied version\(versions.count == 1 ? "" : "s")"
                + (versions.max().map { ", the newest \($0)" } ?? "")
        }
    }

    /// The error `up` stops with when it finds this table and no Freshet history.
    public var refusal: MigrateError { .foreignHistory(tool: tool.rawValue, table: table, state: state) }

    /// Reads `table` (found through the search path, as both tools find it), or nil when there is none.
    public static func read(_ connection: PGConnection, table: String = "schema_migrations") throws -> ForeignHistory? {
        let shape = try connection.query(
            """
            SELECT c.oid::regclass::text, bool_or(a.attname = 'dirty'), bool_or(a.attname = 'version')
            FROM pg_catalog.pg_class c
            JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
            WHERE c.oid = pg_catalog.to_regclass($1)
            GROUP BY c.oid
            """, [table])
        guard let row = shape.rows.first, let name = row[0], row[2] == "t" else { return nil }
        let tool: Tool = row[1] == "t" ? .golangMigrate : .dbmate
        let columns = tool == .golangMigrate ? "version::text, dirty::text" : "version::text, 'f'"
        let values = try connection.query("SELECT \(columns) FROM \(name)")
        var versions: [Int64] = []
        for value in values.rows {
            guard let text = value[0], let version = Int64(text.trimmingCharacters(in: .whitespaces)) else {
                throw MigrateError.baselineRefused("\(name) holds the version `\(value[0] ?? "NULL")`, which is not an integer")
            }
            versions.append(version)
        }
        return ForeignHistory(
            tool: tool, table: name, versions: versions.sorted(), dirty: values.rows.contains { $0[1] == "true" })
    }
}
