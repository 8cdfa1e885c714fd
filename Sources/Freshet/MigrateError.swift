/// Everything the runner refuses or fails at, each with what to do next.
public enum MigrateError: Error, CustomStringConvertible, Sendable {
    case missingDirectory(String)
    case unreadableFile(String)
    case malformedFileName(file: String, reason: String)
    case duplicateVersion(Int64, files: [String])
    case orphanDownFile(String)
    case missingDownFile(String)
    case unknownDirective(file: String, directive: String)
    case malformedDbmateFile(file: String, line: Int, reason: String)
    /// A file that manages its own transactions in a way that cannot run: unbalanced or nested blocks.
    case managedTransaction(file: String, line: Int, reason: String)
    /// Another tool's history table and no Freshet history: `baseline` adopts it.
    case foreignHistory(tool: String, table: String, state: String)
    case baselineRefused(String)
    case needsNoTransaction(file: String, line: Int, statement: String)
    case transactionControlInTransactionalFile(file: String, line: Int, statement: String)
    case noTransactionInSingleTransaction(file: String)
    case malformedSumFile(String)
    case verificationFailed([String])
    case migrationFailed(MigrationFailure)
    case unfinishedMigration(version: Int64, name: String, state: String, error: String?)
    case downFileChanged(file: String, recorded: String, current: String)
    case runnerLockTimeout(seconds: Double, holder: String?)
    case nothingToRepair(version: Int64)
    case unknownVersion(Int64)
    /// `repair` of a migration that is pending: it has no history to repair.
    case pendingNothingToRepair(Int64)
    case invalidDuration(String)
    case cluster(String)
    case misusedDirective(file: String, reason: String)
    case extensionRefused(String)
    case extensionInstalled(name: String, version: String)
    case moduleRequirement(file: String, line: Int, reason: String)
    case unmetRequirement(String)
    case unknownModule(String, known: [String])
    case moduleNeeded(known: [String])
    case dataLoss(file: String, objects: [String])
    case several([MigrateError])

    /// The errors this one stands for: itself, or each of several.
    public var flattened: [MigrateError] {
        if case .several(let errors) = self { return errors.flatMap(\.flattened) }
        return [self]
    }

    /// Throws nothing for no problems, the problem for one, and `.several` for more.
    public static func throwIfAny(_ problems: [MigrateError]) throws {
        if problems.count == 1 { throw problems[0] }
        if !problems.isEmpty { throw MigrateError.several(problems) }
    }

    /// The process exit code this error maps to.
    public var exitCode: ExitStatus {
        switch self {
        case .verificationFailed, .downFileChanged: .verificationFailure
        case .several(let errors) where errors.allSatisfy({ $0.exitCode == .verificationFailure }):
            .verificationFailure
        case .invalidDuration: .usage
        default: .error
        }
    }

    public var description: String {
        switch self {
        case .moduleRequirement(let file, let line, let reason):
            "\(file):\(line): \(reason)"
        case .unmetRequirement(let reason):
            "the plan would leave a requirement unmet: \(reason)"
        case .unknownModule(let module, let known):
            known.isEmpty
                ? "--module \(module): this directory has no modules (its .sql files sit directly in it)"
                : "there is no module \(module); the modules are \(known.joined(separator: ", "))"
        case .moduleNeeded(let known):
            "this directory is a bundle of modules (\(known.joined(separator: ", "))): name the one the migration belongs to with --module"
        case .dataLoss(let file, let objects):
            "\(file) drops data, so it was rolled back and nothing changed: \(objects.joined(separator: "; ")). "
                + "Pass --allow-data-loss to drop it anyway (recorded as an event), or declare in the down file that "
                + "what it drops is derived: `-- migrate:derived <how it is rebuilt>`"
        case .missingDirectory(let path):
            "migrations directory \(path) does not exist: pass --dir, set MIGRATIONS_DIR, or run `migrate new NAME` to start one"
        case .unreadableFile(let path):
            "cannot read \(path): check its permissions"
        case .malformedFileName(let file, let reason):
            "\(file): malformed migration file name: \(reason)"
        case .duplicateVersion(let version, let files):
            "version \(version) is used by more than one migration: \(files.joined(separator: ", ")); renumber one of them"
        case .orphanDownFile(let file):
            "\(file) has no matching .up.sql file: add the up file or remove the down file"
        case .missingDownFile(let file):
            "\(file) is missing, so this migration cannot be rolled back: write the down file, "
                + "or pass --allow-missing-down to roll back through it as an empty step (recorded as forced)"
        case .unknownDirective(let file, let directive):
            "\(file):1: unknown directive `\(directive)`; the directives are `\(TransactionPolicy.noTransactionDirective)` "
                + "and, in a down file, `\(TransactionPolicy.derivedDirective) <how what it drops is rebuilt>`"
        case .extensionRefused(let reason):
            "cannot make the extension scripts: \(reason)"
        case .extensionInstalled(let name, let version):
            "this database has the extension \(name) \(version) installed, so its schemas belong to the extension path: "
                + "move it with ALTER EXTENSION \(name) UPDATE TO ..., or run migrate on a database without Freshet's extensions"
        case .misusedDirective(let file, let reason):
            "\(file):1: \(reason)"
        case .malformedDbmateFile(let file, let line, let reason):
            "\(file):\(line): malformed dbmate migration: \(reason)"
        case .managedTransaction(let file, let line, let reason):
            "\(file):\(line): \(reason); give each BEGIN its COMMIT, with no nesting"
        case .foreignHistory(let tool, let table, let state):
            "this database is managed by \(tool): \(table) \(state), and Freshet has no history here. "
                + "Run `migrate baseline` to adopt it (it records those migrations as applied), then `migrate up`"
        case .baselineRefused(let reason):
            "baseline refused: \(reason)"
        case .needsNoTransaction(let file, let line, let statement):
            "\(file):\(line): \(statement) cannot run inside a transaction block; "
                + "add `\(TransactionPolicy.noTransactionDirective)` as the first line of \(file), "
                + "and keep such statements idempotent (IF NOT EXISTS) since the file then runs statement by statement"
        case .transactionControlInTransactionalFile(let file, let line, let statement):
            "\(file):\(line): \(statement) would end the transaction the runner wraps around the file and its history row; "
                + "remove it, or add `\(TransactionPolicy.noTransactionDirective)` as the first line to manage transactions yourself"
        case .noTransactionInSingleTransaction(let file):
            "\(file) is marked `\(TransactionPolicy.noTransactionDirective)` and cannot run under --single-transaction; "
                + "apply it on its own first (`migrate up --to` its version)"
        case .malformedSumFile(let reason):
            "\(SumFile.fileName) is malformed: \(reason); run `migrate sum` to write it again"
        case .verificationFailed(let problems):
            "verification failed:\n" + problems.map { "  - \($0)" }.joined(separator: "\n")
        case .migrationFailed(let failure):
            failure.description
        case .unfinishedMigration(let version, let name, let state, let error):
            "migration \(version)_\(name) is \(state)"
                + (error.map { ": \($0)" } ?? " (a runner stopped in the middle of it)")
                + "\nIt ran outside a transaction, so part of it may be applied. Inspect the database, finish or undo it by hand, then run\n"
                + "  migrate repair \(version)               # to run it again with the next `migrate up`\n"
                + "  migrate repair \(version) --applied     # if you completed it by hand"
        case .downFileChanged(let file, let recorded, let current):
            "\(file) changed since its migration was applied (recorded \(recorded), now \(current)); "
                + "review it, then pass --force to run the current file (the force is recorded as an event)"
        case .runnerLockTimeout(let seconds, let holder):
            "another runner held the migration lock for \(seconds) s"
                + (holder.map { " (\($0))" } ?? "") + "; wait for it to finish or raise --lock-wait"
        case .nothingToRepair(let version):
            "migration \(version) is neither failed, running nor changed: there is nothing to repair"
        case .unknownVersion(let version):
            "no migration has version \(version): check `migrate status`"
        case .pendingNothingToRepair(let version):
            "migration \(version) is pending: it was never applied, so there is nothing to repair; `migrate up` applies it"
        case .invalidDuration(let text):
            "invalid duration `\(text)`: use a number with a unit, such as 500ms, 5s, 1min or 2h"
        case .cluster(let message):
            message
        case .several(let errors):
            errors.map(\.description).joined(separator: "\n")
        }
    }
}

/// Documented process exit codes.
public enum ExitStatus: Int32, Sendable {
    case success = 0
    case error = 1
    case usage = 2
    /// History, files or the sum file disagree, or `status --exit-code` found work to do.
    case verificationFailure = 3
}
