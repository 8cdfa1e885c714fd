import Foundation

/// What `migrate status` reports for one migration.
public struct MigrationStatus: Codable, Equatable, Sendable {
    public enum State: String, Codable, Sendable {
        case applied, pending, changed, missing, running, failed
    }

    public var version: Int64
    public var name: String
    public var state: State
    /// A pending migration older than the newest applied one.
    public var outOfOrder: Bool
    /// An applied migration whose down file changed since it was applied: `down` refuses it without --force.
    public var downChanged = false
    public var appliedAt: String?
    public var durationMilliseconds: Double?
    public var error: String?

    /// Whether this entry means `status --exit-code` should fail.
    public var needsAttention: Bool { state != .applied || downChanged }

    /// Merges history rows and files into one entry per version.
    public static func merge(directory: MigrationDirectory, rows: [HistoryStore.Row]) -> [MigrationStatus] {
        let rowsByVersion = Dictionary(uniqueKeysWithValues: rows.map { ($0.version, $0) })
        let newestApplied = rows.map(\.version).max() ?? 0
        var entries: [MigrationStatus] = directory.migrations.map { migration in
            guard let row = rowsByVersion[migration.version] else {
                return MigrationStatus(
                    version: migration.version, name: migration.name, state: .pending,
                    outOfOrder: migration.version < newestApplied)
            }
            let state: State
            switch row.state {
            case .running: state = .running
            case .failed: state = .failed
            case .applied: state = row.upChecksum == migration.up.checksum.description ? .applied : .changed
            }
            return MigrationStatus(
                version: row.version, name: row.name, state: state, outOfOrder: false,
                downChanged: row.state == .applied && row.downChecksum != migration.down?.checksum.description,
                appliedAt: row.appliedAt, durationMilliseconds: row.durationMilliseconds, error: row.error)
        }
        for row in rows where directory.migration(version: row.version) == nil {
            entries.append(
                MigrationStatus(
                    version: row.version, name: row.name, state: .missing, outOfOrder: false, appliedAt: row.appliedAt,
                    durationMilliseconds: row.durationMilliseconds, error: row.error))
        }
        return entries.sorted { $0.version < $1.version }
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
        Thread {
            history.value = Swift.Result {
                let connection = try PGConnection(conninfo: conninfo)
                return (try HistoryStore(connection: connection).rows(), "\(connection.target)")
            }
            finished.signal()
        }.start()
        let directory = Swift.Result { try MigrationDirectory(path: directoryPath, checksumsOnly: true) }
        finished.wait()
        // A directory problem is reported first, as when the two were read one after the other.
        let files = try directory.get()
        let (rows, target) = try history.value!.get()
        return (merge(directory: files, rows: rows), target, files)
    }
}
