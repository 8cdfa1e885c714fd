import Foundation

/// Applies, rolls back and repairs migrations against one database, one runner at a time.
public final class Migrator {
    let connection: PGConnection
    let directory: MigrationDirectory
    let reporter: Reporter
    let options: MigratorOptions
    let history: HistoryStore
    private var currentFile = "migrate"

    /// One migration step: the script to run and the bookkeeping that commits with it.
    private struct Step {
        var migration: Migration
        var script: MigrationScript
        var plan: ExecutionPlan
        var verb: String
        /// Whether the data-loss guard checks this step: down steps, unless the file declares what it drops derived.
        var guardsData = false
        var record: (HistoryStore.Duration) throws -> String
    }

    /// Raised inside a transaction that hit `lock_timeout`, so the caller can retry it.
    private struct LockTimedOut: Error, @unchecked Sendable {
        var step: Step
        var error: PostgresError
    }

    public init(connection: PGConnection, directory: MigrationDirectory, reporter: Reporter, options: MigratorOptions) {
        self.connection = connection
        self.directory = directory
        self.reporter = reporter
        self.options = options
        self.history = HistoryStore(connection: connection)
        connection.onNotice = { [weak self, reporter] notice in
            reporter.notice(notice, file: self?.currentFile ?? "migrate")
        }
    }

    // MARK: - Commands

    /// Applies every pending migration up to `target` (of `module` alone, with what it requires,
    /// when one is named), each in its own transaction unless told otherwise.
    @discardableResult
    public func up(to target: Int64? = nil, module: String? = nil) throws -> [Migration] {
        try refuseUnknown(module)
        return try withRunnerLock {
            let rows = try verifiedHistory(refusingForeignHistory: true)
            let plan = try MigrationPlanner.up(directory, applied: Set(rows.map(\.version)), target: target, module: module)
            if let module {
                let others = plan.filter { $0.module != module }
                if !others.isEmpty {
                    reporter.info("also applying, because \(module) requires them: \(others.map(\.label).joined(separator: ", "))")
                }
            }
            var problems: [MigrateError] = []
            var steps: [Step] = []
            for migration in plan {
                do {
                    steps.append(
                        Step(migration: migration, script: migration.up, plan: try TransactionPolicy.plan(migration.up), verb: "applied") {
                            [history] duration in try history.recordAppliedSQL(migration, duration: duration)
                        })
                } catch let error as MigrateError {
                    problems += error.flattened
                }
            }
            problems += singleTransactionRefusals(steps)
            try MigrateError.throwIfAny(problems)
            guard !plan.isEmpty else {
                let newest = rows.map(\.version).max().map { " at version \($0)" } ?? ""
                reporter.info("nothing to apply: the database is up to date\(newest)")
                return []
            }
            try run(steps, dryRunVerb: "would apply")
            return plan
        }
    }

    /// Rolls back applied migrations (of `module` alone when one is named), dependents first, running
    /// the down files recorded at apply time.
    @discardableResult
    public func down(_ target: MigrationPlanner.DownTarget = .steps(1), module: String? = nil) throws -> [Migration] {
        try refuseUnknown(module)
        return try withRunnerLock {
            let rows = try verifiedHistory()
            let rowsByVersion = Dictionary(uniqueKeysWithValues: rows.map { ($0.version, $0) })
            let (versions, dependents) = try MigrationPlanner.down(directory, applied: rows.map(\.version), target: target, module: module)
            if !dependents.isEmpty {
                let labels = dependents.compactMap { directory.migration(version: $0)?.label }
                reporter.info("also rolling back, because they require what is rolled back: \(labels.joined(separator: ", "))")
            }
            var steps: [Step] = []
            var problems: [MigrateError] = []
            for version in versions {
                guard let migration = directory.migration(version: version), let row = rowsByVersion[version] else {
                    problems.append(.unknownVersion(version))
                    continue
                }
                guard let down = migration.down else {
                    guard options.allowMissingDown else {
                        problems.append(.missingDownFile("\(migration.label).down.sql"))
                        continue
                    }
                    let empty = MigrationScript.missingDown(of: migration)
                    steps.append(
                        Step(migration: migration, script: empty, plan: try TransactionPolicy.plan(empty), verb: "rolled back (no down file)") {
                            [history] duration in
                            try history.recordRolledBackSQL(
                                migration, duration: duration,
                                forcedBecause: "rolled back as an empty step: no down file (--allow-missing-down)")
                        })
                    continue
                }
                let forced = !down.checksum.matches(stored: row.downChecksum)
                if forced && !options.force {
                    problems.append(.downFileChanged(
                        file: down.fileName, recorded: row.downChecksum ?? "no down file",
                        current: down.checksum.description))
                }
                do {
                    let plan = try TransactionPolicy.plan(down)
                    steps.append(Step(
                        migration: migration, script: down, plan: plan,
                        verb: forced ? "rolled back (forced)" : "rolled back",
                        guardsData: plan.runsInTransaction && down.derivedDataReason == nil
                    ) { [history] duration in
                        try history.recordRolledBackSQL(
                            migration, duration: duration,
                            forcedBecause: forced ? "ran a down file that changed since the migration was applied" : nil)
                    })
                } catch let error as MigrateError {
                    problems += error.flattened
                }
            }
            problems += singleTransactionRefusals(steps)
            try MigrateError.throwIfAny(problems)
            if steps.isEmpty {
                let inScope = rows.filter { module == nil || directory.migration(version: $0.version)?.module == module }
                if case .version(let version) = target, let current = inScope.map(\.version).max(), version > current {
                    reporter.info("the target \(version) is above the current version \(current): nothing to roll back")
                } else {
                    reporter.info("nothing to roll back")
                }
            }
            try run(steps, dryRunVerb: "would roll back")
            return steps.map(\.migration)
        }
    }

    /// Clears a failed or interrupted no-transaction migration, or accepts changed or missing files.
    ///
    /// - Parameter markApplied: record a failed or running migration as applied, because it was finished by hand.
    public func repair(version: Int64, markApplied: Bool = false) throws {
        try withRunnerLock {
            try history.ensure()
            guard let row = try history.rows().first(where: { $0.version == version }) else {
                if directory.migration(version: version) != nil { throw MigrateError.pendingNothingToRepair(version) }
                throw MigrateError.unknownVersion(version)
            }
            let migration = directory.migration(version: version)
            let detail: String
            switch (row.state, migration) {
            case (.running, _), (.failed, _):
                if markApplied, let migration {
                    try connection.execute(
                        """
                        UPDATE migrate.history SET state = 'applied', error = NULL, failed_statement = NULL,
                            up_checksum = \(try connection.literal(migration.up.checksum.description)),
                            down_checksum = \(try migration.down.map { try connection.literal($0.checksum.description) } ?? "NULL")
                        WHERE \(try rowKey(row))
                        """)
                    detail = "marked \(row.state.rawValue) migration applied, as finished by hand"
                } else {
                    try connection.execute("DELETE FROM migrate.history WHERE \(try rowKey(row))")
                    detail = "cleared \(row.state.rawValue) migration; the next `migrate up` runs it again"
                }
            case (.applied, nil):
                try connection.execute("DELETE FROM migrate.history WHERE \(try rowKey(row))")
                detail = "forgot applied migration whose file is missing"
            case (.applied, let migration?):
                let up = migration.up.checksum.description
                let down = migration.down?.checksum.description
                guard row.upChecksum != up || row.downChecksum != down else {
                    throw MigrateError.nothingToRepair(version: version)
                }
                try connection.query(
                    "UPDATE migrate.history SET up_checksum = $2, down_checksum = $3 WHERE version = $1 AND module = $4",
                    [String(version), up, down, row.module])
                detail = "accepted changed files: up \(row.upChecksum) -> \(up), down \(row.downChecksum ?? "none") -> \(down ?? "none")"
            }
            try history.recordEvent(row.module, version, row.name, .repaired, checksum: migration?.up.checksum.description, detail: detail)
            reporter.step("repaired", "\(version)_\(row.name)")
            reporter.info("  \(detail)")
        }
    }

    /// Adopts a database another tool (or a person) migrated: records migrations as applied without running them.
    ///
    /// - Parameter version: record every migration up to this one; nil reads golang-migrate's or dbmate's `table`.
    @discardableResult
    public func baseline(version: Int64?, table: String = "schema_migrations") throws -> [Migration] {
        try withRunnerLock {
            if !options.dryRun { try history.ensure() }
            let rows = try history.rows()
            guard rows.isEmpty else {
                throw MigrateError.baselineRefused(
                    "migrate.history already records \(rows.count) migration\(rows.count == 1 ? "" : "s"); "
                        + "baseline adopts only a database Freshet has no history for")
            }
            let chosen: [Migration]
            let source: String
            if let version {
                chosen = directory.migrations.filter { $0.version <= version }
                guard !chosen.isEmpty else {
                    throw MigrateError.baselineRefused("no migration in \(directory.path) has a version at or below \(version)")
                }
                source = "baseline at version \(version), given by hand"
            } else {
                guard let foreign = try ForeignHistory.read(connection, table: table) else {
                    throw MigrateError.baselineRefused(
                        "there is no \(table) table from golang-migrate or dbmate; for a database migrated by hand, "
                            + "name the version it is at, as in `migrate baseline 42`")
                }
                if foreign.dirty {
                    throw MigrateError.baselineRefused(
                        "golang-migrate's \(foreign.table) marks version \(foreign.versions.first ?? 0) dirty: it failed halfway. "
                            + "Finish or undo it by hand, set dirty = false, then run baseline again")
                }
                guard foreign.recordsMigrations else {
                    throw MigrateError.baselineRefused("\(foreign.table) records no applied migration: run `migrate up` instead")
                }
                switch foreign.tool {
                case .golangMigrate:
                    let current = foreign.versions[0]
                    guard directory.migration(version: current) != nil else {
                        throw MigrateError.baselineRefused(
                            "golang-migrate is at version \(current), which no file in \(directory.path) has: "
                                + "point --dir at the directory that migrated this database")
                    }
                    chosen = directory.migrations.filter { $0.version <= current }
                case .dbmate:
                    let unknown = foreign.versions.filter { directory.migration(version: $0) == nil }
                    guard unknown.isEmpty else {
                        throw MigrateError.baselineRefused(
                            "\(foreign.table) records versions no file in \(directory.path) has: "
                                + unknown.map(String.init).joined(separator: ", "))
                    }
                    chosen = foreign.versions.compactMap { directory.migration(version: $0) }
                }
                source = "adopted from \(foreign.tool.rawValue)'s \(foreign.table), which \(foreign.state)"
            }
            if options.dryRun {
                for migration in chosen { reporter.step("would baseline", migration.label) }
                return chosen
            }
            // One query string: every row commits together or none does.
            try connection.execute(try chosen.map { try history.recordBaselinedSQL($0, detail: source) }.joined(separator: "\n"))
            for migration in chosen { reporter.step("baselined", migration.label) }
            reporter.info("recorded \(chosen.count) migration\(chosen.count == 1 ? "" : "s") as applied (\(source)); nothing ran")
            return chosen
        }
    }

    /// Checks history against the files without changing anything; throws what `up` would refuse.
    public func verify(alsoReporting earlier: [String] = []) throws {
        let rows = try history.rows()
        try refuseUnfinished(rows)
        let problems = earlier
            + HistoryDrift(directory: directory, rows: rows).verificationProblems(allowOutOfOrder: options.allowOutOfOrder)
        if !problems.isEmpty { throw MigrateError.verificationFailed(problems) }
    }

    /// Refuses a database where one of the directory's modules is installed as an extension: its
    /// objects belong to the extension, and its versions move with ALTER EXTENSION.
    private func refuseInstalledExtensions() throws {
        guard !directory.modules.isEmpty else { return }
        let names = directory.modules.map(ExtensionBundle.extensionName) + [ExtensionBundle.umbrella]
        let result = try connection.query(
            "SELECT extname::text, extversion FROM pg_catalog.pg_extension WHERE extname::text = ANY ($1::text[]) ORDER BY extname = 'freshet', extname",
            ["{" + names.joined(separator: ",") + "}"])
        if let first = result.rows.first {
            throw MigrateError.extensionInstalled(name: first[0]!, version: first[1]!)
        }
    }

    private func refuseUnknown(_ module: String?) throws {
        guard let module, !directory.modules.contains(module) else { return }
        throw MigrateError.unknownModule(module, known: directory.modules)
    }

    private func singleTransactionRefusals(_ steps: [Step]) -> [MigrateError] {
        guard options.singleTransaction else { return [] }
        return steps.filter { !$0.plan.runsInTransaction }.map { .noTransactionInSingleTransaction(file: $0.script.fileName) }
    }

    // MARK: - Locking and verification

    private func withRunnerLock<T>(_ body: () throws -> T) throws -> T {
        // A checksums-only listing (status) would run empty files and record them as applied.
        precondition(directory.hasText, "a checksums-only MigrationDirectory cannot change a database")
        try prepareSession()
        let key = [String(HistoryStore.lockKey.classID), String(HistoryStore.lockKey.objectID)]
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: .milliseconds(Int64(options.lockWait * 1000)))
        var delay = 0.01
        var announced = false
        while try connection.scalar("SELECT pg_try_advisory_lock($1::int, $2::int)", key) != "t" {
            guard clock.now < deadline else {
                throw MigrateError.runnerLockTimeout(seconds: options.lockWait, holder: try lockHolder())
            }
            if !announced {
                reporter.detail("waiting for the migration lock held by \(try lockHolder() ?? "another runner")")
                announced = true
            }
            usleep(useconds_t(delay * 1_000_000))
            delay = min(delay * 2, 0.25)
        }
        defer { _ = try? connection.query("SELECT pg_advisory_unlock($1::int, $2::int)", key) }
        reporter.detail("holding the migration lock")
        return try body()
    }

    private func prepareSession() throws {
        var settings =
            "SET application_name = 'migrate'; SET lock_timeout = '\(PostgresDuration.milliseconds(options.lockTimeout))'"
        if let version = try connection.scalar("SHOW server_version_num").flatMap(Int.init), version >= 140000 {
            // A killed runner's backend then notices within a second and rolls back, releasing its locks.
            settings += "; SET client_connection_check_interval = '1s'"
        }
        try connection.execute(settings)
    }

    private func lockHolder() throws -> String? {
        let result = try connection.query(
            """
            SELECT a.pid::text, coalesce(nullif(a.application_name, ''), 'unnamed'), a.usename::text,
                   coalesce(a.client_addr::text, 'local socket')
            FROM pg_locks l JOIN pg_stat_activity a USING (pid)
            WHERE l.locktype = 'advisory' AND l.granted AND l.classid = $1::int::oid AND l.objid = $2::int::oid
              AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
            """, [String(HistoryStore.lockKey.classID), String(HistoryStore.lockKey.objectID)])
        return result.rows.first.map { "pid \($0[0]!), \($0[1]!) as \($0[2]!) from \($0[3]!)" }
    }

    /// Reads history under the lock and refuses unfinished migrations and drift, and with
    /// `refusingForeignHistory` a database another tool manages that Freshet has no history for.
    private func verifiedHistory(refusingForeignHistory: Bool = false) throws -> [HistoryStore.Row] {
        var rows = try history.rows()
        // Checked before the bookkeeping is created, so a refused database is left exactly as it was.
        if refusingForeignHistory, rows.isEmpty, let foreign = try ForeignHistory.read(connection), foreign.recordsMigrations {
            throw foreign.refusal
        }
        try refuseInstalledExtensions()
        if !options.dryRun {
            try history.ensure()
            let assigned = try history.assignModules(directory, rows: rows)
            if assigned > 0 {
                reporter.info("gave \(assigned) history row\(assigned == 1 ? "" : "s") written before modules existed the module of \(assigned == 1 ? "its" : "their") folder")
                rows = try history.rows()
            }
        }
        try refuseUnfinished(rows)
        let problems = HistoryDrift(directory: directory, rows: rows).problems(allowOutOfOrder: options.allowOutOfOrder)
        if !problems.isEmpty { throw MigrateError.verificationFailed(problems) }
        return rows
    }

    private func refuseUnfinished(_ rows: [HistoryStore.Row]) throws {
        if let row = rows.first(where: { $0.state != .applied }) {
            let error = row.error.map { message in
                row.failedStatement.map { "statement \($0) failed: \(message)" } ?? message
            }
            throw MigrateError.unfinishedMigration(
                version: row.version, name: row.name, state: row.state.rawValue, error: error)
        }
    }

    // MARK: - Running steps

    private func run(_ steps: [Step], dryRunVerb: String) throws {
        if options.dryRun {
            for step in steps {
                let mode = step.plan.runsInTransaction ? "" : " (no transaction)"
                reporter.step(dryRunVerb, step.script.fileName + mode)
                if let explanation = step.plan.explanation { reporter.info("  \(explanation)") }
            }
            return
        }
        for step in steps {
            if let explanation = step.plan.explanation { reporter.info("\(step.script.fileName): \(explanation)") }
            guard step.script.direction == .down else { continue }
            if let reason = step.script.derivedDataReason {
                reporter.info("\(step.script.fileName): the data-loss guard lets it drop what it drops, which the file declares derived: \(reason)")
            } else if !step.plan.runsInTransaction {
                reporter.info("\(step.script.fileName): runs outside a transaction, so the data-loss guard cannot roll it back and does not check it")
            }
        }
        if options.singleTransaction {
            try runInTransaction(steps)
            return
        }
        for step in steps {
            if !step.plan.runsInTransaction {
                try runStatementByStatement(step)
            } else {
                try runInTransaction([step])
            }
        }
    }

    /// Runs the steps and their bookkeeping in one transaction, retrying it after a lock timeout,
    /// and again after the data-loss guard has counted what a down step dropped and found it empty
    /// or allowed.
    private func runInTransaction(_ steps: [Step]) throws {
        var attempt = 0
        var guarding: DataLossGuard? = steps.contains(where: \.guardsData) ? DataLossGuard() : nil
        while true {
            do {
                try guarding?.snapshot(connection)
                let timings = try attemptTransaction(steps, guarding: guarding)
                for (step, milliseconds) in zip(steps, timings) {
                    reporter.step(step.verb, step.migration.label, milliseconds: milliseconds)
                }
                return
            } catch let timedOut as LockTimedOut {
                attempt += 1
                guard attempt <= options.lockRetries else {
                    var failure = locate(timedOut.error, in: timedOut.step, replaying: [])
                    failure.note = try blockingSessions(after: attempt)
                    try recordFailure(failure, step: timedOut.step)
                    throw MigrateError.migrationFailed(failure)
                }
                let delay = options.retryBackoff * pow(2, Double(attempt - 1)) * Double.random(in: 0.8...1.2)
                reporter.info(
                    "\(timedOut.step.script.fileName): lock timeout, attempt \(attempt) of \(options.lockRetries + 1); "
                        + String(format: "retrying in %.1f s", delay))
                usleep(useconds_t(delay * 1_000_000))
            } catch let dropped as DataLossGuard.Dropped {
                let step = steps[dropped.stepIndex]
                let counted = try DataLossGuard.count(dropped.objects, connection)
                let holding = counted.filter { $0.1 != 0 }
                if holding.isEmpty {
                    reporter.detail("\(step.script.fileName) drops only empty objects: \(counted.map(\.0.label).joined(separator: ", "))")
                    guarding?.acceptEmpty(dropped.objects, stepIndex: dropped.stepIndex)
                    continue
                }
                let described = holding.map { "\($0.0.label) (\(DataLossGuard.describe($0.1, $0.0)))" }
                guard options.allowDataLoss else {
                    throw MigrateError.dataLoss(file: step.script.fileName, objects: described)
                }
                reporter.info("\(step.script.fileName): dropping data, as --allow-data-loss allows: \(described.joined(separator: "; "))")
                guarding?.allow(counted, stepIndex: dropped.stepIndex)
            }
        }
    }

    /// Sends each file and its bookkeeping as one query string: the server runs a multi-statement
    /// string as one implicit transaction, so a migration costs a single round trip and commits with
    /// its history row or not at all. Several steps share an explicit transaction instead.
    private func attemptTransaction(_ steps: [Step], guarding: DataLossGuard? = nil) throws -> [Double] {
        let explicit = steps.count > 1
        if explicit { try connection.execute("BEGIN") }
        var timings: [Double] = []
        for (index, step) in steps.enumerated() {
            currentFile = step.script.fileName
            defer { currentFile = "migrate" }
            let started = ContinuousClock.now
            // The newline ends a trailing line comment; the semicolon ends a last statement without one.
            let sql = explicit ? step.plan.sqlInsideRunnerTransaction : step.plan.sql
            var prelude = ""
            var check = ""
            if step.guardsData, let guarding {
                prelude = guarding.preludeSQL(stepIndex: index)
                check = guarding.checkSQL(stepIndex: index) + "\n"
                if let detail = guarding.allowedDetail(stepIndex: index) {
                    check += try history.eventSQL(step.migration, .dataLossAllowed, checksum: step.script.checksum.description, detail: detail) + "\n"
                }
            }
            let query = prelude + sql + "\n;\n" + check + (try step.record(.sinceQueryStart))
            do {
                try connection.execute(query)
                // A file's own BEGIN turned the query into a transaction block that its blanked COMMIT left open.
                if !explicit && connection.isInTransaction { try connection.execute("COMMIT") }
            } catch var error as PostgresError {
                try refuseLostConnection(error, during: step.script.fileName)
                if explicit || connection.isInTransaction { rollback() }
                if let dropped = guarding?.dropped(by: error) { throw dropped }
                // A write between counting and this attempt: count again.
                if error.sqlState == DataLossGuard.notEmptySQLState, let guarding {
                    throw DataLossGuard.Dropped(stepIndex: index, objects: guarding.provedEmpty[index] ?? [])
                }
                if let position = error.position { error.position = position - prelude.unicodeScalars.count }
                // Past the file and the separator lies the bookkeeping SQL: its errors are the runner's own.
                if let position = error.position, position > step.script.sql.unicodeScalars.count + 3 {
                    throw error
                }
                if error.isLockTimeout { throw LockTimedOut(step: step, error: error) }
                let failure = locate(error, in: step, replaying: steps[..<index].map(\.plan.sqlInsideRunnerTransaction))
                try recordFailure(failure, step: step)
                throw MigrateError.migrationFailed(failure)
            } catch {
                if explicit { rollback() }
                throw error
            }
            timings.append(Self.milliseconds(since: started))
        }
        if explicit {
            do {
                try connection.execute("COMMIT")
            } catch {
                rollback()
                throw error
            }
        }
        return timings
    }

    /// Runs a no-transaction file one statement at a time, keeping a `running` row until it finishes.
    /// A file that opens its own transactions has each block retried from its BEGIN after a lock timeout.
    private func runStatementByStatement(_ step: Step) throws {
        let statements = SQLStatementSplitter.split(step.plan.sql)
        if step.script.direction == .up { try history.markRunning(step.migration) }
        currentFile = step.script.fileName
        defer { currentFile = "migrate" }
        let started = ContinuousClock.now
        var index = 0
        var openBlock: Int?
        var keptSomething = false
        var attempt = 0
        while index < statements.count {
            let statement = statements[index]
            do {
                try connection.execute(statement.text)
                switch TransactionPolicy.transactionControl(statement.keywords) {
                case "BEGIN", "START TRANSACTION": openBlock = index
                case "COMMIT", "END", "ROLLBACK", "ABORT": openBlock = nil; keptSomething = true
                default: if openBlock == nil { keptSomething = true }
                }
                index += 1
                attempt = 0
            } catch let error as PostgresError {
                try refuseLostConnection(error, during: step.script.fileName)
                attempt += 1
                if error.isLockTimeout && attempt <= options.lockRetries {
                    if let begin = openBlock {
                        rollback()
                        index = begin
                        openBlock = nil
                    }
                    usleep(useconds_t(options.retryBackoff * pow(2, Double(attempt - 1)) * 1_000_000))
                    continue
                }
                if connection.isInTransaction { rollback() }
                var failure = MigrationFailure(
                    file: step.script.fileName, statementIndex: index + 1, statementCount: statements.count,
                    error: error)
                failure.place(Self.location(of: error.position, in: statement, text: step.plan.sql), in: step.script)
                failure.rolledBack = !keptSomething
                failure.version = step.migration.version
                if let begin = openBlock {
                    let line = step.script.fileLocation(SourceLocation(utf8Offset: statements[begin].utf8Offset, in: step.plan.sql)).line
                    failure.note = "The transaction the file opened at line \(line) was rolled back."
                }
                if error.isLockTimeout { failure.note = try blockingSessions(after: attempt) }
                try history.markFailed(step.migration, error: error.description, statement: index + 1)
                try history.recordEvent(
                    step.migration.module, step.migration.version, step.migration.name, .failed, checksum: step.script.checksum.description,
                    detail: failure.summary)
                throw MigrateError.migrationFailed(failure)
            }
        }
        let milliseconds = Self.milliseconds(since: started)
        try connection.execute(try step.record(.milliseconds(milliseconds)))
        reporter.step(step.verb, step.migration.label, milliseconds: milliseconds)
    }

    /// A server that went away cannot take the failure's bookkeeping: report its own message instead of
    /// the next statement's "no connection".
    private func refuseLostConnection(_ error: PostgresError, during file: String) throws {
        guard !connection.isHealthy else { return }
        throw ConnectionError(
            message: "\(error.severity) \(error.sqlState): \(error.message)", target: "\(connection.target)", lost: true,
            during: file)
    }

    /// The WHERE condition naming one history row.
    private func rowKey(_ row: HistoryStore.Row) throws -> String {
        "module = \(try connection.literal(row.module)) AND version = \(row.version)"
    }

    private func rollback() {
        _ = try? connection.execute("ROLLBACK")
    }

    private func recordFailure(_ failure: MigrationFailure, step: Step) throws {
        try history.recordEvent(
            step.migration.module, step.migration.version, step.migration.name, .failed, checksum: step.script.checksum.description,
            detail: failure.summary)
    }

    // MARK: - Diagnostics

    /// Finds the failing line: from the server's position, or by replaying the file statement by
    /// statement in a transaction that is always rolled back.
    private func locate(_ error: PostgresError, in step: Step, replaying earlier: [String]) -> MigrationFailure {
        var failure = MigrationFailure(file: step.script.fileName, error: error)
        failure.version = step.migration.version
        if let position = error.position {
            // A statement left open at the end of the file fails at the separator after it.
            let end = step.script.sql.unicodeScalars.count
            failure.place(SourceLocation(characterPosition: min(position, end), in: step.script.sql), in: step.script)
            return failure
        }
        let statements = SQLStatementSplitter.split(step.plan.sqlInsideRunnerTransaction)
        guard statements.count > 1, !error.isLockTimeout else {
            if let first = statements.first {
                failure.place(SourceLocation(utf8Offset: first.utf8Offset, in: step.plan.sqlInsideRunnerTransaction), in: step.script)
            }
            return failure
        }
        reporter.detail("locating the failing statement of \(step.script.fileName) by replaying it in a rolled-back transaction")
        defer { rollback() }
        do {
            try connection.execute("BEGIN")
            for sql in earlier { try connection.execute(sql) }
            for (index, statement) in statements.enumerated() {
                do {
                    try connection.execute(statement.text)
                } catch let replayed as PostgresError {
                    failure.statementIndex = index + 1
                    failure.statementCount = statements.count
                    failure.place(
                        Self.location(of: replayed.position, in: statement, text: step.plan.sqlInsideRunnerTransaction),
                        in: step.script)
                    return failure
                }
            }
        } catch {
            reporter.detail("replay stopped: \(error)")
        }
        return failure
    }

    /// Describes the sessions that hold locks in this database, oldest transaction first.
    private func blockingSessions(after attempts: Int) throws -> String {
        let result = try connection.query(
            """
            SELECT a.pid::text, a.usename::text, coalesce(nullif(a.application_name, ''), 'unnamed'),
                   coalesce(a.state, 'unknown'),
                   coalesce(extract(epoch FROM now() - a.xact_start)::int, 0)::text,
                   left(regexp_replace(coalesce(a.query, ''), '\\s+', ' ', 'g'), 80),
                   string_agg(DISTINCT l.mode || ' on ' || l.relation::regclass::text, ', ')
            FROM pg_locks l
            JOIN pg_stat_activity a USING (pid)
            JOIN pg_class c ON c.oid = l.relation
            WHERE l.granted AND l.locktype = 'relation' AND l.pid <> pg_backend_pid()
              AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
              AND c.relnamespace <> 'pg_catalog'::regnamespace
            GROUP BY 1, 2, 3, 4, 5, 6, a.xact_start
            ORDER BY a.xact_start NULLS LAST
            LIMIT 3
            """)
        let timeout = PostgresDuration.milliseconds(options.lockTimeout)
        guard !result.rows.isEmpty else {
            return "lock_timeout (\(timeout)) expired \(attempts) times; the blocking session has since released its locks."
        }
        let sessions = result.rows.map { row in
            "pid \(row[0]!) (user \(row[1]!), application \(row[2]!), \(row[3]!), transaction open \(row[4]!) s, "
                + "last query: \(row[5]!)) holds \(row[6]!)"
        }
        return "lock_timeout (\(timeout)) expired \(attempts) times; blocked by:\n    "
            + sessions.joined(separator: "\n    ")
            + "\n  End those transactions (pg_terminate_backend(pid)) or retry when they finish; --lock-timeout raises the wait."
    }

    /// The location inside `text` (the script's text as split) of a server position within one statement.
    static func location(of position: Int?, in statement: SQLStatement, text: String) -> SourceLocation {
        let start = SourceLocation(utf8Offset: statement.utf8Offset, in: text)
        guard let position else { return start }
        let inner = SourceLocation(characterPosition: position, in: statement.text)
        return inner.line == 1
            ? SourceLocation(line: start.line, column: start.column + inner.column - 1)
            : SourceLocation(line: start.line + inner.line - 1, column: inner.column)
    }

    private static func milliseconds(since start: ContinuousClock.Instant) -> Double {
        let elapsed = ContinuousClock.now - start
        return Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
    }
}
