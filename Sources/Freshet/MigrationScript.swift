import Foundation

/// One direction of a migration: its file, normalised text, checksum and directives.
///
/// A class, though immutable: directories hold thousands, and each copy of a struct with seven
/// strings costs seven retains.
public final class MigrationScript: Sendable {
    public enum Direction: String, Sendable {
        case up, down
    }

    public let version: Int64
    public let name: String
    public let direction: Direction
    /// The file name inside the migrations directory: `ledger/0005_events.up.sql` in a module's
    /// folder, `0005_events.up.sql` in a flat directory.
    public let fileName: String
    /// The module whose folder holds the file; empty in a flat directory.
    public let module: String
    /// The text after BOM removal and line-ending normalisation; this is what runs.
    public let sql: String
    public let checksum: Checksum
    /// The file line where `sql` starts: 1, or the marker line of a dbmate section.
    public let firstLine: Int
    /// Whether this is a section of a dbmate file rather than a whole file.
    public let isSection: Bool
    /// Whether the file opts out of the wrapping transaction: `-- migrate:no-transaction`, or dbmate's `transaction:false`.
    public let isNonTransactional: Bool

    public init(
        version: Int64, name: String, direction: Direction, path: String, sql: String, firstLine: Int = 1,
        dbmateNoTransaction: Bool? = nil, fileName: String? = nil
    ) {
        self.version = version
        self.name = name
        self.direction = direction
        self.fileName = fileName ?? path.split(separator: "/").last.map(String.init) ?? path
        self.module = Self.module(of: self.fileName)
        self.sql = sql
        self.checksum = Checksum(normalizedText: sql)
        self.firstLine = firstLine
        self.isSection = dbmateNoTransaction != nil
        self.isNonTransactional = dbmateNoTransaction ?? TransactionPolicy.hasNoTransactionDirective(sql)
    }

    /// A script known only by its checksum, from the ``ChecksumCache``: it has no text and never runs.
    init(version: Int64, name: String, direction: Direction, fileName: String, checksum: Checksum, isSection: Bool) {
        self.version = version
        self.name = name
        self.direction = direction
        self.fileName = fileName
        self.module = Self.module(of: fileName)
        self.sql = ""
        self.checksum = checksum
        self.firstLine = 1
        self.isSection = isSection
        self.isNonTransactional = false
    }

    /// An empty step standing in for a missing down file under `--allow-missing-down`.
    static func missingDown(of migration: Migration) -> MigrationScript {
        MigrationScript(
            version: migration.version, name: migration.name, direction: .down,
            path: migration.label + ".down.sql (missing)", sql: "")
    }

    /// What the file's first line says rebuilds the data it drops (`-- migrate:derived <how>`), if it says so.
    public var derivedDataReason: String? { TransactionPolicy.derivedDataReason(sql) }

    /// The folder part of `ledger/0005_events.up.sql`, found on the UTF-8 view: a Character
    /// search costs grapheme breaking for every file of a large directory.
    private static func module(of fileName: String) -> String {
        guard let slash = fileName.utf8.firstIndex(of: UInt8(ascii: "/")) else { return "" }
        return String(fileName[..<slash])
    }

    /// The name `migrate.sum` lists: the file, and for a dbmate section the direction too.
    public var sumName: String { isSection ? "\(fileName)#\(direction.rawValue)" : fileName }

    /// Turns a location inside `sql` into one inside the file.
    public func fileLocation(_ local: SourceLocation) -> SourceLocation {
        SourceLocation(line: local.line + firstLine - 1, column: local.column)
    }
}

/// A migration version with its up file and, when present, its down file.
public struct Migration: Sendable {
    public let version: Int64
    public let name: String
    public let up: MigrationScript
    public let down: MigrationScript?

    /// The module it belongs to; empty in a flat directory.
    public var module: String { up.module }

    /// `<version>_<name>`, as in the file names, after `<module>/` in a module's folder.
    public var label: String {
        if up.isSection { return String(up.fileName.dropLast(".sql".count)) }
        return String(up.fileName.dropLast(".up.sql".count))
    }
}
