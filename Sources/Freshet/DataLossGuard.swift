/// Catches a down step that drops a table, or a column, holding rows, without parsing its SQL.
///
/// Before the step the runner lists every table and column; after the step's SQL, inside its
/// transaction, a DO block looks for the ones that are gone and raises, which rolls the step back.
/// The runner then counts what they held. Empty ones are accepted, and the step runs again with
/// them locked against writers and checked empty first, so rows written in between cannot be lost.
struct DataLossGuard {
    /// A table or column, by identity, with the name it had before the step.
    struct Object: Hashable {
        var table: UInt32
        /// 0 for the table itself.
        var column: Int16
        var tableName: String
        var columnName: String?

        var key: String { "\(table):\(column)" }
        var label: String { columnName.map { "column \(tableName).\($0)" } ?? "table \(tableName)" }
    }

    /// The step raised: it dropped these objects.
    struct Dropped: Error, @unchecked Sendable {
        var stepIndex: Int
        var objects: [Object]
    }

    static let sqlState = "FRDL1"
    static let notEmptySQLState = "FRDL2"

    /// Every table and column of user schemas now.
    private(set) var objects: [String: Object] = [:]
    /// Objects found empty, by the step that drops them, which a later attempt may drop once it
    /// has proved them still empty.
    private(set) var provedEmpty: [Int: [Object]] = [:]
    /// Objects `--allow-data-loss` lets a step drop with their rows, by step index.
    private(set) var allowed: [Int: [(Object, Int64)]] = [:]

    /// Lists the tables and columns; the runner's own schema and temporary tables are left out.
    mutating func snapshot(_ connection: PGConnection) throws {
        let result = try connection.query(
            """
            SELECT c.oid::text, coalesce(a.attnum, 0)::text, pg_catalog.format('%I.%I', n.nspname, c.relname),
                   pg_catalog.quote_ident(a.attname)
            FROM pg_catalog.pg_class c
            JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
            LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
            WHERE c.relkind IN ('r', 'p') AND c.relpersistence <> 't'
              AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'migrate') AND n.nspname NOT LIKE 'pg\\_toast%'
            """)
        objects = [:]
        for row in result.rows {
            let table = UInt32(row[0]!)!
            let whole = Object(table: table, column: 0, tableName: row[2]!, columnName: nil)
            objects[whole.key] = whole
            if let number = row[1].flatMap(Int16.init), number > 0 {
                let column = Object(table: table, column: number, tableName: row[2]!, columnName: row[3])
                objects[column.key] = column
            }
        }
    }

    /// SQL to run before step `index`: locks the objects it drops that were proved empty against
    /// writers, and checks they still are.
    func preludeSQL(stepIndex: Int) -> String {
        guard let empty = provedEmpty[stepIndex], !empty.isEmpty else { return "" }
        let tables = Set(empty.map(\.tableName)).sorted()
        let checks = empty.map { object in
            let condition = object.columnName.map { "\($0) IS NOT NULL" } ?? "true"
            return "IF EXISTS (SELECT FROM \(object.tableName) WHERE \(condition)) THEN "
                + "RAISE EXCEPTION USING ERRCODE = '\(Self.notEmptySQLState)', MESSAGE = 'freshet data-loss guard: \(object.key) holds rows again'; END IF;"
        }
        return "LOCK TABLE \(tables.joined(separator: ", ")) IN SHARE MODE;\nDO $freshet_guard$ BEGIN \(checks.joined(separator: " ")) END $freshet_guard$;\n"
    }

    /// SQL to run after step `index`'s file: raises, naming every listed object that is gone. What
    /// any step may drop is left out: after an earlier step of the same transaction it is gone too.
    func checkSQL(stepIndex: Int) -> String {
        let accepted = Set(provedEmpty.values.joined().map(\.key) + allowed.values.joined().map(\.0.key))
        let watched = objects.values.filter { !accepted.contains($0.key) }
        let tables = watched.filter { $0.column == 0 }.map { String($0.table) }
        let columns = watched.filter { $0.column != 0 }
        return """
            DO $freshet_guard$
            DECLARE
                gone text;
            BEGIN
                SELECT pg_catalog.string_agg(t::text || ':0', ' ') INTO gone
                FROM pg_catalog.unnest('{\(tables.joined(separator: ","))}'::oid[]) t
                WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_class WHERE oid = t);
                SELECT pg_catalog.concat_ws(' ', gone, pg_catalog.string_agg(r::text || ':' || n::text, ' ')) INTO gone
                FROM unnest('{\(columns.map { String($0.table) }.joined(separator: ","))}'::oid[],
                                       '{\(columns.map { String($0.column) }.joined(separator: ","))}'::int2[]) AS c(r, n)
                WHERE EXISTS (SELECT FROM pg_catalog.pg_class WHERE oid = r)
                  AND NOT EXISTS (SELECT FROM pg_catalog.pg_attribute WHERE attrelid = r AND attnum = n AND NOT attisdropped);
                IF gone <> '' THEN
                    RAISE EXCEPTION USING ERRCODE = '\(Self.sqlState)', MESSAGE = 'freshet data-loss guard',
                        DETAIL = '\(stepIndex)|' || gone;
                END IF;
            END
            $freshet_guard$;
            """
    }

    /// The objects a guard error names, or nil for any other error.
    func dropped(by error: PostgresError) -> Dropped? {
        guard error.sqlState == Self.sqlState, let detail = error.detail else { return nil }
        let parts = detail.split(separator: "|", maxSplits: 1)
        guard parts.count == 2, let index = Int(parts[0]) else { return nil }
        return Dropped(stepIndex: index, objects: parts[1].split(separator: " ").compactMap { objects[String($0)] })
    }

    /// Counts what each dropped object holds now that the step has rolled back: rows for a table,
    /// values that are not null for a column. Row-level security is off for the count, so a policy
    /// that hides rows from the runner makes the count fail, never come out short; an object that
    /// cannot be counted counts as holding data (-1).
    static func count(_ objects: [Object], _ connection: PGConnection) throws -> [(Object, Int64)] {
        try objects.map { object in
            let counted = object.columnName.map { "count(\($0))" } ?? "count(*)"
            do {
                let results = try connection.execute(
                    "BEGIN; SET LOCAL row_security = off; SELECT \(counted) FROM \(object.tableName); COMMIT")
                let value = results.compactMap { $0.rows.first?.first ?? nil }.first
                return (object, Int64(value ?? "") ?? -1)
            } catch let error as PostgresError {
                _ = try? connection.execute("ROLLBACK")
                if !connection.isHealthy { throw error }
                return (object, -1)
            }
        }
    }

    mutating func acceptEmpty(_ objects: [Object], stepIndex: Int) {
        provedEmpty[stepIndex, default: []] += objects
    }

    mutating func allow(_ counted: [(Object, Int64)], stepIndex: Int) {
        allowed[stepIndex, default: []] += counted
    }

    /// What `--allow-data-loss` let step `index` drop, for its event; nil when nothing.
    func allowedDetail(stepIndex: Int) -> String? {
        guard let objects = allowed[stepIndex], !objects.isEmpty else { return nil }
        return "dropped with --allow-data-loss: " + objects.map { "\($0.0.label) (\(Self.describe($0.1, $0.0)))" }.joined(separator: "; ")
    }

    static func describe(_ count: Int64, _ object: Object) -> String {
        if count < 0 { return "cannot be counted with row-level security off, so it may hold data" }
        return object.columnName == nil ? "\(count) row\(count == 1 ? "" : "s")" : "\(count) value\(count == 1 ? "" : "s")"
    }
}
