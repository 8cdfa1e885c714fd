import Foundation

/// A normalised `pg_dump --schema-only` of a database, without the runner's own schema.
public struct SchemaSnapshot: Equatable, Sendable {
    public let text: String

    /// Dumps the schema of the database at `conninfo` with the installation's pg_dump.
    public init(conninfo: String, installation: PostgresInstallation) throws {
        let output = try ProcessRunner.check(
            installation.program("pg_dump"),
            ["--schema-only", "--exclude-schema=\(HistoryStore.schema)", "--dbname=\(conninfo)"])
        text = Self.normalize(output)
    }

    /// Drops what changes between two dumps of the same schema: comments naming versions,
    /// and the random-keyed `\restrict` lines that pg_dump 15.14 and later write.
    public static func normalize(_ dump: String) -> String {
        dump.split(separator: "\n", omittingEmptySubsequences: true)
            .filter { line in
                !line.hasPrefix("\\restrict") && !line.hasPrefix("\\unrestrict") && !line.hasPrefix("-- Dumped ")
                    && line != "--"
            }
            .joined(separator: "\n")
    }

    /// The first lines where two snapshots differ, for a readable failure.
    public func difference(from other: SchemaSnapshot, limit: Int = 12) -> String {
        let mine = text.split(separator: "\n")
        let theirs = other.text.split(separator: "\n")
        let onlyMine = mine.filter { !theirs.contains($0) }.prefix(limit).map { "- \($0)" }
        let onlyTheirs = theirs.filter { !mine.contains($0) }.prefix(limit).map { "+ \($0)" }
        let changed = (onlyMine + onlyTheirs).joined(separator: "\n")
        return changed.isEmpty ? "(the same lines in another order)" : changed
    }
}
