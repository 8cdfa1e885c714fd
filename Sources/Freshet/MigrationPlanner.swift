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

extension MigrationPlanner {
    /// What `up` runs: the pending migrations asked for (a module's, or all, up to `target`), with
    /// the pending migrations of other modules they require, in an order that meets every
    /// requirement and otherwise follows version.
    public static func up(
        _ directory: MigrationDirectory, applied: Set<Int64>, target: Int64? = nil, module: String? = nil
    ) throws -> [Migration] {
        let pending = directory.migrations.filter { !applied.contains($0.version) }
        var chosen = Set(pending.filter { ($0.module == module || module == nil) && $0.version <= (target ?? .max) }.map(\.version))
        var frontier = Array(chosen)
        while let version = frontier.popLast() {
            let migration = directory.migration(version: version)!
            for needed in needs(migration, among: pending, in: directory) where chosen.insert(needed.version).inserted {
                if module == nil, let target, needed.version > target {
                    throw MigrateError.unmetRequirement(
                        "\(migration.up.fileName) requires \(needed.up.fileName), which is above --to \(target)")
                }
                frontier.append(needed.version)
            }
        }
        return try ordered(pending.filter { chosen.contains($0.version) }, in: directory)
    }

    /// What `down` runs: the applied migrations asked for (a module's or all, by `target`), with
    /// every applied migration of another module that requires them, dependents first. Returns the
    /// plan and the versions added as dependents.
    public static func down(
        _ directory: MigrationDirectory, applied: [Int64], target: DownTarget, module: String? = nil
    ) throws -> (plan: [Int64], dependents: [Int64]) {
        let inScope = applied.filter { version in module == nil || directory.migration(version: version)?.module == module }
        let asked = Set(down(applied: inScope, target: target))
        var chosen = asked
        let known = applied.compactMap { directory.migration(version: $0) }
        var changed = true
        while changed {
            changed = false
            func remaining(_ module: String) -> Int64 {
                known.filter { $0.module == module && !chosen.contains($0.version) }.map(\.version).max() ?? -1
            }
            for migration in known where !chosen.contains(migration.version) {
                let unmet = effectiveRequirements(of: migration, in: directory).contains { remaining($0.module) < $0.atLeast }
                guard unmet else { continue }
                for later in known where later.module == migration.module && later.version >= migration.version {
                    if chosen.insert(later.version).inserted { changed = true }
                }
            }
        }
        let plan = try ordered(known.filter { chosen.contains($0.version) }, in: directory).reversed().map(\.version)
        // Applied versions without a file are left to drift verification, which refuses them.
        let unknown = asked.subtracting(plan).sorted(by: >)
        return (unknown + plan, plan.filter { !asked.contains($0) })
    }

    /// Every requirement a migration is under: its module's requirement lines at its version or below.
    static func effectiveRequirements(of migration: Migration, in directory: MigrationDirectory) -> [ModuleRequirement] {
        directory.requirements.values.joined().filter { $0.from == migration.module && $0.version <= migration.version }
    }

    /// The migrations among `candidates` that must run before `migration`: its module's earlier
    /// ones, and those its requirements name.
    private static func needs(_ migration: Migration, among candidates: [Migration], in directory: MigrationDirectory) -> [Migration] {
        let required = effectiveRequirements(of: migration, in: directory)
        return candidates.filter { candidate in
            (candidate.module == migration.module && candidate.version < migration.version)
                || required.contains { $0.module == candidate.module && candidate.version <= $0.atLeast }
        }
    }

    /// `migrations` in an order that runs each after what it needs, the lowest version first among
    /// those ready; a cycle of requirements is refused.
    private static func ordered(_ migrations: [Migration], in directory: MigrationDirectory) throws -> [Migration] {
        var waiting = migrations.sorted { $0.version < $1.version }
        var placed: [Migration] = []
        var done = Set<Int64>()
        while !waiting.isEmpty {
            guard let index = waiting.firstIndex(where: { candidate in
                needs(candidate, among: waiting, in: directory).allSatisfy { done.contains($0.version) }
            }) else {
                throw MigrateError.unmetRequirement(
                    "the requires files form a cycle among " + waiting.map(\.up.fileName).joined(separator: ", "))
            }
            let next = waiting.remove(at: index)
            placed.append(next)
            done.insert(next.version)
        }
        return placed
    }
}
