/// Chooses which migrations `up` applies and which `down` rolls back.
public enum MigrationPlanner {
    /// How far `down` goes.
    public enum DownTarget: Equatable, Sendable {
        /// Roll back this many of the newest applied migrations.
        case steps(Int)
        /// Roll back every applied migration above this version.
        case version(Int64)
        /// Roll back every applied migration, version 0 included.
        case all
    }

    /// The migrations `up` applies, in version order: every file without a history row, up to `target`.
    ///
    /// Out-of-order files (below the newest applied version) are included only when allowed;
    /// otherwise drift verification has already refused them.
    public static func up(_ migrations: [Migration], applied: Set<Int64>, target: Int64? = nil) -> [Migration] {
        migrations.filter { !applied.contains($0.version) && $0.version <= (target ?? .max) }
    }

    /// The applied versions `down` rolls back, newest first.
    public static func down(applied: [Int64], target: DownTarget) -> [Int64] {
        let newestFirst = applied.sorted(by: >)
        switch target {
        case .steps(let count):
            return Array(newestFirst.prefix(max(0, count)))
        case .version(let version):
            return newestFirst.filter { $0 > version }
        case .all:
            return newestFirst
        }
    }
}
