import Foundation

/// What `migrate status` reports for one migration.
public struct MigrationStatus: Codable, Equatable, Sendable {
    public enum State: String, Codable, Sendable {
        case applied, pending, changed, missing, running, failed
    }

    public var version: Int64
    /// The module whose folder holds it; empty in a flat directory.
    public var module: String = ""
    public var name: String
    public var state: State
    /// A pending migration older than the newest applied one.
    public var outOfOrder: Bool
    /// An applied migration whose down file changed since it was applied: `down` refuses it without --force.
    public var downChanged = false
    public var appliedAt: String?
    public var durationMilliseconds: Double?
    public var error: String?

    /// The module's version after this entry: applied, changed, running and failed ones count.
    var isRecorded: Bool { state != .pending }

    /// Whether this entry means `status --exit-code` should fail.
    public var needsAttention: Bool { state != .applied || downChanged }

    /// Merges history rows and files into one entry per version, in version order: a merge join,
    /// since both come sorted and dictionaries of thousands of rows cost milliseconds.
    public static func merge(directory: MigrationDirectory, rows: [HistoryStore.Row]) -> [MigrationStatus] {
        let rows = zip(rows, rows.dropFirst()).allSatisfy({ $0.version < $1.version }) ? rows : rows.sorted { $0.version < $1.version }
        let newestApplied = directory.newestVersions(of: rows)
        func missing(_ row: HistoryStore.Row) -> MigrationStatus {
            MigrationStatus(
                version: row.version, module: row.module, name: row.name, state: .missing, outOfOrder: false, appliedAt: row.appliedAt,
                durationMilliseconds: row.durationMilliseconds, error: row.error)
        }
        var entries: [MigrationStatus] = []
        entries.reserveCapacity(max(rows.count, directory.migrations.count))
        var next = rows.startIndex
        for migration in directory.migrations {
            while next < rows.endIndex && rows[next].version < migration.version {
                entries.append(missing(rows[next]))
                next += 1
            }
            guard next < rows.endIndex && rows[next].version == migration.version else {
                entries.append(MigrationStatus(
                    version: migration.version, module: migration.module, name: migration.name, state: .pending,
                    outOfOrder: migration.version < (newestApplied[migration.module] ?? .min)))
                continue
            }
            let row = rows[next]
            next += 1
            let state: State
            switch row.state {
            case .running: state = .running
            case .failed: state = .failed
            case .applied: state = migration.up.checksum.matches(stored: row.upChecksum) ? .applied : .changed
            }
            entries.append(MigrationStatus(
                version: row.version, module: migration.module, name: row.name, state: state, outOfOrder: false,
                downChanged: row.state == .applied && !Self.sameDown(migration.down, stored: row.downChecksum),
                appliedAt: row.appliedAt, durationMilliseconds: row.durationMilliseconds, error: row.error))
        }
        entries += rows[next...].map(missing)
        return entries
    }

    /// Whether a down file's checksum is the one the history stored; both absent counts as the same.
    static func sameDown(_ down: MigrationScript?, stored: String?) -> Bool {
        guard let down else { return stored == nil }
        return down.checksum.matches(stored: stored)
    }

    /// Reads `status`'s two halves at once, the directory here and the history on another thread,
    /// since the history mostly waits on the server. Returns the entries, the target, and the
    /// checksums-only directory they came from.
    public static func read(directoryPath: String, conninfo: String) throws
        -> (entries: [MigrationStatus], target: String, directory: MigrationDirectory)
    {
        final class HistoryResult: @unchecked Sendable {
            var value: Swift.Result<([HistoryStore.Row], String), any Error>?
        }
        let history = HistoryResult()
        let finished = DispatchSemaphore(value: 0)
        WorkerThread.connector.run {
            history.value = Swift.Result {
                let connection = try PGConnection(conninfo: conninfo)
                return (try HistoryStore(connection: connection).rows(), "\(connection.target)")
            }
            finished.signal()
        }
        let directory = Swift.Result { try MigrationDirectory(path: directoryPath, checksumsOnly: true) }
        finished.wait()
        // A directory problem is reported first, as when the two were read one after the other.
        let files = try directory.get()
        let (rows, target) = try history.value!.get()
        return (merge(directory: files, rows: rows), target, files)
    }
}
