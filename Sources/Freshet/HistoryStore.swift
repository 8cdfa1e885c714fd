import Foundation

/// The runner's own schema: the history of applied migrations and an append-only event log.
public struct HistoryStore {
    public static let schema = "migrate"
    /// The two-part advisory lock key runners take: `pg_try_advisory_lock(1835624306, 1)`.
    public static let lockKey = (classID: Int32(0x6D69_6772), objectID: Int32(1))

    /// One row of `migrate.history`.
    public struct Row: Sendable {
        public enum State: String, Sendable {
            case applied, running, failed
        }

        public var version: Int64
        /// The module the migration belongs to; empty for a flat directory, and for rows written
        /// before modules existed until `up` assigns them.
        public var module: String = ""
        public var name: String
        public var upChecksum: String
        public var downChecksum: String?
        public var state: State
        public var appliedAt: String
        public var appliedBy: String
        public var durationMilliseconds: Double?
        public var error: String?
        public var failedStatement: Int?
    }

    public enum Action: String, Sendable {
        case applied, rolledBack = "rolled_back", failed, repaired, forced, baselined
        /// A row written before modules existed was given the module whose folder holds its version.
        case assigned
        /// A down step dropped data and ran because of `--allow-data-loss`.
        case dataLossAllowed = "data_loss_allowed"
    }

    /// How long a step took, as the bookkeeping SQL records it.
    public enum Duration: Sendable {
        case milliseconds(Double)
        /// Measured by the server: the bookkeeping runs in the same query string as the file, so the
        /// time since the query arrived is the time the file took.
        case sinceQueryStart

        var sql: String {
            switch self {
            case .milliseconds(let value): "'\(String(format: "%.3f", value)) milliseconds'::interval"
            case .sinceQueryStart: "clock_timestamp() - statement_timestamp()"
            }
        }
    }

    let connection: PGConnection

    static let actionList =
        "('applied', 'rolled_back', 'failed', 'repaired', 'forced', 'baselined', 'assigned', 'data_loss_allowed')"

    static let setupSQL = """
        CREATE SCHEMA IF NOT EXISTS migrate;
        COMMENT ON SCHEMA migrate IS 'Bookkeeping of the migrate runner: applied migrations and their event log.';
        CREATE TABLE IF NOT EXISTS migrate.history (
            module text NOT NULL DEFAULT '',
            version bigint NOT NULL CHECK (version >= 0),
            name text NOT NULL,
            up_checksum text NOT NULL,
            down_checksum text,
            state text NOT NULL CHECK (state IN ('applied', 'running', 'failed')),
            applied_at timestamptz NOT NULL DEFAULT clock_timestamp(),
            applied_by text NOT NULL DEFAULT current_user,
            duration interval,
            error text,
            failed_statement integer,
            PRIMARY KEY (module, version)
        );
        COMMENT ON TABLE migrate.history IS 'One row per migration the database holds; running and failed rows belong to no-transaction files and need `migrate repair`.';
        CREATE TABLE IF NOT EXISTS migrate.events (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            occurred_at timestamptz NOT NULL DEFAULT clock_timestamp(),
            module text NOT NULL DEFAULT '',
            version bigint NOT NULL,
            name text NOT NULL,
            action text NOT NULL CHECK (action IN \(Self.actionList)),
            checksum text,
            actor text NOT NULL DEFAULT current_user,
            duration interval,
            detail text
        );
        COMMENT ON TABLE migrate.events IS 'Append-only log of every applied, rolled back, failed, repaired, forced and baselined step.';
        CREATE OR REPLACE FUNCTION migrate.refuse_event_change() RETURNS trigger
            LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
        BEGIN
            RAISE EXCEPTION 'migrate.events is append-only: % is not allowed', TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END;
        $$;
        COMMENT ON FUNCTION migrate.refuse_event_change() IS 'Keeps migrate.events append-only.';
        CREATE OR REPLACE TRIGGER events_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON migrate.events
            FOR EACH STATEMENT EXECUTE FUNCTION migrate.refuse_event_change();
        """

    /// Whether the bookkeeping tables exist yet.
    public func exists() throws -> Bool {
        try connection.scalar("SELECT to_regclass('migrate.events') IS NOT NULL") == "t"
    }

    /// Creates the bookkeeping schema when it is missing, and brings an older one up to date. Call
    /// only while holding the runner lock.
    public func ensure() throws {
        let state = try connection.scalar(
            """
            SELECT CASE WHEN to_regclass('migrate.events') IS NULL THEN 'missing' ELSE concat_ws(',',
                CASE WHEN (SELECT p.proconfig FROM pg_catalog.pg_proc p
                           WHERE p.oid = to_regprocedure('migrate.refuse_event_change()'))
                          @> ARRAY['search_path=pg_catalog, pg_temp'] THEN NULL ELSE 'path' END,
                CASE WHEN EXISTS (SELECT FROM pg_catalog.pg_constraint
                                  WHERE conrelid = pg_catalog.to_regclass('migrate.events') AND conname = 'events_action_check'
                                    AND pg_catalog.pg_get_constraintdef(oid) LIKE '%data_loss_allowed%') THEN NULL ELSE 'actions' END,
                CASE WHEN EXISTS (SELECT FROM pg_catalog.pg_attribute
                                  WHERE attrelid = pg_catalog.to_regclass('migrate.history') AND attname = 'module'
                                    AND NOT attisdropped) THEN NULL ELSE 'modules' END,
                CASE WHEN EXISTS (SELECT FROM pg_catalog.pg_constraint
                                  WHERE conrelid = pg_catalog.to_regclass('migrate.history') AND conname = 'history_version_check'
                                    AND pg_catalog.pg_get_constraintdef(oid) LIKE '%> 0)%') THEN 'version' END) END
            """) ?? ""
        if state == "missing" {
            try connection.execute(Self.setupSQL)
            return
        }
        // Bookkeeping written by older runners: each part is brought up to date on its own.
        let outdated = Set(state.split(separator: ","))
        var upgrade: [String] = []
        if outdated.contains("path") {
            upgrade.append("ALTER FUNCTION migrate.refuse_event_change() SET search_path = pg_catalog, pg_temp")
        }
        if outdated.contains("actions") {
            upgrade.append(
                "ALTER TABLE migrate.events DROP CONSTRAINT IF EXISTS events_action_check, "
                    + "ADD CONSTRAINT events_action_check CHECK (action IN \(Self.actionList))")
        }
        if outdated.contains("modules") {
            // Rows keep module '' until `up` finds the folder that holds their version.
            upgrade.append(
                "ALTER TABLE migrate.history ADD COLUMN module text NOT NULL DEFAULT '', DROP CONSTRAINT history_pkey, "
                    + "ADD PRIMARY KEY (module, version)")
            upgrade.append("ALTER TABLE migrate.events ADD COLUMN module text NOT NULL DEFAULT ''")
        }
        if outdated.contains("version") {
            upgrade.append(
                "ALTER TABLE migrate.history DROP CONSTRAINT history_version_check, "
                    + "ADD CONSTRAINT history_version_check CHECK (version >= 0)")
        }
        if !upgrade.isEmpty { try connection.execute(upgrade.joined(separator: ";\n")) }
    }

    /// Gives each row written before modules existed (module '') the module whose folder holds its
    /// version, with an `assigned` event; rows whose version no folder holds stay as they are.
    /// `rows` are the history as the caller read it, so this costs no query when nothing needs a module.
    func assignModules(_ directory: MigrationDirectory, rows: [Row]) throws -> Int {
        guard !directory.modules.isEmpty else { return 0 }
        let unassigned = rows.filter(\.module.isEmpty).compactMap { directory.migration(version: $0.version) }
        guard !unassigned.isEmpty else { return 0 }
        let sql = try unassigned.map { migration in
            "UPDATE migrate.history SET module = \(try literal(migration.module)) WHERE module = '' AND version = \(migration.version);\n"
                + (try eventSQL(migration, .assigned, detail: "recorded before modules existed; version \(migration.version) is in \(migration.module)/"))
        }
        try connection.execute(sql.joined(separator: "\n"))
        return unassigned.count
    }

    /// Every history row, by version.
    public func rows() throws -> [Row] {
        // One round trip in the common case: today's bookkeeping is assumed, and a missing table
        // (no history) or a missing module column (bookkeeping from before modules) is answered by
        // the server's error. A fresh backend also plans a catalog probe slower than this query.
        precondition(!connection.isInTransaction, "history rows are read outside a transaction block, which a fallback would abort")
        // Binary: the server would spend a millisecond per thousand rows formatting times.
        func read(module: String) throws -> [Row] {
            try connection.rows(
                "SELECT version, name, up_checksum, down_checksum, state, applied_at, applied_by, duration, error, failed_statement, \(module) FROM migrate.history",
                binary: true
            ) { row in
                Row(
                    version: row.integer(0)!, module: row[10]!, name: row[1]!, upChecksum: row[2]!, downChecksum: row[3],
                    state: Row.State(rawValue: row[4]!) ?? .failed,
                    appliedAt: PostgresTimestamp.iso8601(microsecondsSince2000: row.timestampMicroseconds(5)!), appliedBy: row[6]!,
                    durationMilliseconds: row.intervalMicroseconds(7).map { Double($0) / 1000 }, error: row[8],
                    failedStatement: row.integer(9).map { Int($0) })
            }
        }
        var rows: [Row]
        do {
            rows = try read(module: "module")
        } catch let error as PostgresError where error.sqlState == "42P01" {
            return []
        } catch let error as PostgresError where error.sqlState == "42703" {
            rows = try read(module: "''")
        }
        // Sorted here rather than by the server, which would sort in a fresh backend's cold memory;
        // rows come back in the order they were written, which is almost always this one already.
        let inOrder = { (first: Row, second: Row) in
            first.version != second.version ? first.version < second.version : first.module.utf8.lexicographicallyPrecedes(second.module.utf8)
        }
        if !zip(rows, rows.dropFirst()).allSatisfy({ inOrder($0, $1) }) { rows.sort(by: inOrder) }
        return rows
    }

    /// SQL that records an applied migration; it runs inside the migration's own transaction.
    func recordAppliedSQL(_ migration: Migration, duration: Duration) throws -> String {
        let values = try [
            literal(migration.module), String(migration.version), literal(migration.name), literal(migration.up.checksum.description),
            migration.down.map { try literal($0.checksum.description) } ?? "NULL", "'applied'", duration.sql,
        ]
        return """
            INSERT INTO migrate.history (module, version, name, up_checksum, down_checksum, state, duration)
            VALUES (\(values.joined(separator: ", ")))
            ON CONFLICT (module, version) DO UPDATE SET name = excluded.name, up_checksum = excluded.up_checksum,
                down_checksum = excluded.down_checksum, state = 'applied', applied_at = clock_timestamp(),
                applied_by = current_user, duration = excluded.duration, error = NULL, failed_statement = NULL;
            \(try eventSQL(migration, .applied, checksum: migration.up.checksum.description, duration: duration))
            """
    }

    /// SQL that records a migration as applied by another tool or by hand, with today's checksums.
    func recordBaselinedSQL(_ migration: Migration, detail: String) throws -> String {
        let values = try [
            literal(migration.module), String(migration.version), literal(migration.name), literal(migration.up.checksum.description),
            migration.down.map { try literal($0.checksum.description) } ?? "NULL",
        ]
        return """
            INSERT INTO migrate.history (module, version, name, up_checksum, down_checksum, state)
            VALUES (\(values.joined(separator: ", ")), 'applied');
            \(try eventSQL(migration, .baselined, checksum: migration.up.checksum.description, detail: detail))
            """
    }

    /// SQL that forgets a rolled-back migration; it runs inside the down file's transaction.
    func recordRolledBackSQL(_ migration: Migration, duration: Duration, forcedBecause reason: String?) throws -> String {
        var sql = "DELETE FROM migrate.history WHERE module = \(try literal(migration.module)) AND version = \(migration.version);\n"
        if let reason {
            sql += try eventSQL(migration, .forced, checksum: migration.down?.checksum.description, detail: reason) + "\n"
        }
        sql += try eventSQL(migration, .rolledBack, checksum: migration.down?.checksum.description, duration: duration)
        return sql
    }

    /// SQL for one event row.
    func eventSQL(
        _ migration: Migration, _ action: Action, checksum: String? = nil, duration: Duration? = nil, detail: String? = nil
    ) throws -> String {
        try eventSQL(migration.module, migration.version, migration.name, action, checksum: checksum, duration: duration, detail: detail)
    }

    /// SQL for one event row of a migration known by its history row alone.
    func eventSQL(
        _ module: String, _ version: Int64, _ name: String, _ action: Action, checksum: String? = nil,
        duration: Duration? = nil, detail: String? = nil
    ) throws -> String {
        let values = try [
            literal(module), String(version), literal(name), literal(action.rawValue), checksum.map(literal) ?? "NULL",
            duration?.sql ?? "NULL", detail.map(literal) ?? "NULL",
        ]
        return "INSERT INTO migrate.events (module, version, name, action, checksum, duration, detail) VALUES (\(values.joined(separator: ", ")));"
    }

    /// Records an event in its own transaction, for steps whose own transaction rolled back.
    func recordEvent(
        _ module: String, _ version: Int64, _ name: String, _ action: Action, checksum: String? = nil, detail: String? = nil
    ) throws {
        try connection.execute(eventSQL(module, version, name, action, checksum: checksum, detail: detail))
    }

    /// Writes the `running` row a no-transaction migration starts with.
    func markRunning(_ migration: Migration) throws {
        try connection.query(
            """
            INSERT INTO migrate.history (version, name, up_checksum, down_checksum, state, module)
            VALUES ($1, $2, $3, $4, 'running', $5)
            ON CONFLICT (module, version) DO UPDATE SET state = 'running', error = NULL, failed_statement = NULL,
                applied_at = clock_timestamp()
            """,
            [String(migration.version), migration.name, migration.up.checksum.description,
             migration.down?.checksum.description, migration.module])
    }

    /// Marks a no-transaction migration failed, keeping the error and the failing statement.
    func markFailed(_ migration: Migration, error: String, statement: Int?) throws {
        try connection.query(
            "UPDATE migrate.history SET state = 'failed', error = $2, failed_statement = $3 WHERE version = $1 AND module = $4",
            [String(migration.version), error, statement.map(String.init), migration.module])
    }

    func literal(_ text: String) throws -> String {
        try connection.literal(text)
    }
}
