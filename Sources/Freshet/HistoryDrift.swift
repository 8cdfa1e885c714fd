/// Where the database's history and the migration files disagree.
public struct HistoryDrift: Equatable, Sendable {
    /// Applied migrations whose up file no longer has the recorded checksum.
    public var changed: [String] = []
    /// Applied migrations whose down file no longer has the recorded checksum (or is gone).
    public var changedDown: [String] = []
    /// Applied migrations with no file.
    public var missing: [String] = []
    /// Pending files below the newest applied version of their module.
    public var outOfOrder: [String] = []

    public var isEmpty: Bool { changed.isEmpty && missing.isEmpty && outOfOrder.isEmpty }

    /// Compares history rows with the files on disk.
    public init(directory: MigrationDirectory, rows: [HistoryStore.Row]) {
        let recorded = Set(rows.map(\.version))
        for row in rows {
            guard let migration = directory.migration(version: row.version) else {
                missing.append("\(row.version)_\(row.name).up.sql")
                continue
            }
            if !migration.up.checksum.matches(stored: row.upChecksum) {
                changed.append(migration.up.fileName)
            }
            if row.state == .applied, !MigrationStatus.sameDown(migration.down, stored: row.downChecksum) {
                changedDown.append(migration.down?.fileName ?? "\(migration.label).down.sql")
            }
        }
        let newest = directory.newestVersions(of: rows)
        outOfOrder = directory.migrations
            .filter { !recorded.contains($0.version) && $0.version < (newest[$0.module] ?? .min) }
            .map(\.up.fileName)
    }

    /// The problems that stop `up` and `down`, each naming its files and what to do.
    public func problems(allowOutOfOrder: Bool) -> [String] {
        var problems: [String] = []
        if !changed.isEmpty {
            problems.append(
                "applied migrations changed on disk: \(changed.joined(separator: ", ")). "
                    + "Restore them, or run `migrate repair VERSION` to accept the new contents.")
        }
        if !missing.isEmpty {
            problems.append(
                "applied migrations are missing from the directory: \(missing.joined(separator: ", ")). "
                    + "Restore the files, or run `migrate repair VERSION` to forget them.")
        }
        if !outOfOrder.isEmpty && !allowOutOfOrder {
            problems.append(
                "pending migrations are older than the newest applied one: \(outOfOrder.joined(separator: ", ")). "
                    + "Renumber them, or pass --allow-out-of-order to apply them anyway.")
        }
        return problems
    }

    /// What `verify` reports: the problems above, and down files changed since their migration was
    /// applied, which `down` refuses without --force.
    public func verificationProblems(allowOutOfOrder: Bool) -> [String] {
        var problems = problems(allowOutOfOrder: allowOutOfOrder)
        if !changedDown.isEmpty {
            problems.append(
                "down files changed since their migration was applied: \(changedDown.joined(separator: ", ")). "
                    + "Restore them, or run `migrate repair VERSION` to accept the new contents.")
        }
        return problems
    }
}
