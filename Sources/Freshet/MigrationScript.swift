import Foundation

/// One direction of a migration: its file, normalised text, checksum and directives.
public struct MigrationScript: Sendable {
    public enum Direction: String, Sendable {
        case up, down
    }

    public let version: Int64
    public let name: String
    public let direction: Direction
    /// The file's path on disk.
    public let path: String
    /// The file name without its directory.
    public let fileName: String
    /// The text after BOM removal and line-ending normalisation; this is what runs.
    public let sql: String
    public let checksum: Checksum

    public init(version: Int64, name: String, direction: Direction, path: String, sql: String) {
        self.version = version
        self.name = name
        self.direction = direction
        self.path = path
        self.fileName = path.split(separator: "/").last.map(String.init) ?? path
        self.sql = sql
        self.checksum = Checksum(normalizedText: sql)
    }

    /// Whether the file opts out of the wrapping transaction with `-- migrate:no-transaction`.
    public var isNonTransactional: Bool { TransactionPolicy.hasNoTransactionDirective(sql) }
}

/// A migration version with its up file and, when present, its down file.
public struct Migration: Sendable {
    public let version: Int64
    public let name: String
    public let up: MigrationScript
    public let down: MigrationScript?

    /// `<version>_<name>`, as in the file names.
    public var label: String { up.fileName.replacingOccurrences(of: ".up.sql", with: "") }
}
