import Foundation
import Testing

@testable import Freshet
import FreshetTestSupport

/// The extension path, from the files `make install-extension` generated and installed.
enum InstalledExtension {
    static var bundle: MigrationDirectory { get throws { try MigrationDirectory(path: BundleDatabase.migrationsPath) } }

    /// Where PGXS installed the files: `pg_config --sharedir`/extension of the server the tests use.
    static func directory(_ cluster: PostgresCluster) throws -> String {
        let sharedir = try ProcessRunner.check(cluster.installation.program("pg_config"), ["--sharedir"])
            .trimmingCharacters(in: .whitespacesAndNewlines)
        return sharedir + "/extension"
    }

    /// Refuses to test stale or missing files: they must be what the migrations generate now.
    static func require(_ cluster: PostgresCluster) throws {
        let installed = try directory(cluster)
        for file in try ExtensionBundle(directory: bundle).files {
            let text = try? String(contentsOfFile: "\(installed)/\(file.name)", encoding: .utf8)
            guard text == file.text else {
                throw MigrateError.cluster("\(installed)/\(file.name) is missing or stale: run `make install-extension` (make test does)")
            }
        }
    }

    /// A database with every module installed as an extension.
    static func database() throws -> TestDatabase {
        let database = try TestDatabase()
        try require(database.cluster)
        try database.connect().execute("CREATE EXTENSION freshet CASCADE")
        return database
    }

    /// The plain schema of an extension database, as `pg_dump` shows it once a copy's objects leave
    /// their extensions: pg_dump leaves extension members out.
    static func schema(of database: TestDatabase) throws -> SchemaSnapshot {
        let copy = try TestDatabase(template: database.name)
        try copy.connect().execute(
            """
            DO $$
            DECLARE member record;
            BEGIN
                FOR member IN
                    SELECT e.extname, o.type, o.identity
                    FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
                    CROSS JOIN LATERAL pg_identify_object(d.classid, d.objid, d.objsubid) o
                    WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e' AND e.extname LIKE 'freshet%'
                LOOP
                    EXECUTE format('ALTER EXTENSION %I DROP %s %s', member.extname, member.type, member.identity);
                END LOOP;
                FOR member IN SELECT extname FROM pg_extension WHERE extname LIKE 'freshet%' ORDER BY extname = 'freshet' DESC, oid DESC LOOP
                    EXECUTE format('DROP EXTENSION %I', member.extname);
                END LOOP;
            END $$;
            """)
        return try SchemaSnapshot(conninfo: copy.conninfo, installation: copy.cluster.installation)
    }

    static func versions(_ connection: PGConnection) throws -> [String: String] {
        Dictionary(uniqueKeysWithValues: try connection.query(
            "SELECT extname::text, extversion FROM pg_extension WHERE extname LIKE 'freshet%'").rows.map { ($0[0]!, $0[1]!) })
    }
}

@Suite struct ExtensionTests {
    @Test func aStagedInstallHoldsExactlyTheControlFilesAndTheGeneratedScripts() throws {
        let bundle = try ExtensionBundle(directory: InstalledExtension.bundle)
        let work = NSTemporaryDirectory() + "freshet-extension-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: work) }
        try bundle.write(to: work)
        let cluster = try TestCluster.shared()
        let makefile = BundleDatabase.migrationsPath + "/../extension/Makefile"
        _ = try ProcessRunner.check("/usr/bin/make", [
            "-C", work, "-f", makefile, "install", "DESTDIR=\(work)/stage", "PG_CONFIG=\(cluster.installation.program("pg_config"))",
        ])
        let staged = "\(work)/stage" + (try InstalledExtension.directory(cluster))
        let files = try FileManager.default.contentsOfDirectory(atPath: staged).sorted()
        #expect(files == bundle.files.map(\.name).sorted())
        #expect(files.contains("freshet_ledger--0012--0007.sql") && files.contains("freshet_ledger--0007--0012.sql"))
        #expect(files.filter { $0.hasSuffix(".control") } == ["freshet.control", "freshet_feed.control", "freshet_foundation.control",
            "freshet_jobs.control", "freshet_ledger.control", "freshet_refresh.control"])
        let ledger = bundle.files.first { $0.name == "freshet_ledger.control" }!.text
        #expect(ledger.contains("default_version = '0019'") && ledger.contains("requires = 'freshet_foundation, freshet_jobs'"))
        #expect(ledger.contains("relocatable = false") && ledger.contains("superuser = true"))
    }

    @Test func theUmbrellaInstallsEveryModuleWithTheMigrationPathsSchema() throws {
        let database = try InstalledExtension.database()
        #expect(try InstalledExtension.versions(database.connect()) == [
            "freshet": "1", "freshet_foundation": "0016", "freshet_jobs": "0017", "freshet_refresh": "0018",
            "freshet_ledger": "0019", "freshet_feed": "0023",
        ])
        let migrated = try BundleDatabase.fresh()
        let viaMigrations = try SchemaSnapshot(conninfo: migrated.conninfo, installation: migrated.cluster.installation)
        let viaExtension = try InstalledExtension.schema(of: database)
        #expect(viaExtension == viaMigrations, "\(viaExtension.difference(from: viaMigrations))")
    }

    /// Every lower version of every module, reached with ALTER EXTENSION, has the schema the
    /// runner's per-module down gives, and so has the way back up.
    @Test func everyVersionOfEveryModuleMatchesTheRunnersDownAndUp() throws {
        let bundle = try InstalledExtension.bundle
        let viaExtension = try InstalledExtension.database()
        // A connection per statement: the schema is read from a copy, which needs the database idle.
        func onExtension(_ sql: String) throws { try viaExtension.connect().execute(sql) }
        let migrated = try BundleDatabase.fresh()
        var options = MigratorOptions()
        options.allowDataLoss = true
        for module in bundle.modules {
            let chain = bundle.migrations.filter { $0.module == module }
            for target in chain.dropLast().reversed() {
                let plan = try Migrator(connection: migrated.connect(), directory: bundle, reporter: migrated.output.reporter, options: options)
                    .down(.version(target.version), module: module)
                // The runner's plan moves dependents first; each extension moves in one step, in the
                // order of its last step in the plan, and back up in the reverse order.
                var moved: [String] = []
                for step in plan {
                    moved.removeAll { $0 == step.module }
                    moved.append(step.module)
                }
                let history = try migrated.connect()
                for name in moved {
                    let version = try history.scalar("SELECT max(version) FROM migrate.history WHERE module = $1", [name]).flatMap(Int64.init)!
                    try onExtension(
                        "ALTER EXTENSION \(ExtensionBundle.extensionName(name)) UPDATE TO '\(ExtensionBundle.versionName(bundle.migration(version: version)!))'")
                }
                let down = try SchemaSnapshot(conninfo: migrated.conninfo, installation: migrated.cluster.installation)
                let extensionDown = try InstalledExtension.schema(of: viaExtension)
                #expect(extensionDown == down, "\(module) at \(target.label): \(extensionDown.difference(from: down))")
                try Migrator(connection: migrated.connect(), directory: bundle, reporter: migrated.output.reporter, options: options).up()
                for name in moved.reversed() {
                    try onExtension("ALTER EXTENSION \(ExtensionBundle.extensionName(name)) UPDATE")
                }
                let up = try SchemaSnapshot(conninfo: migrated.conninfo, installation: migrated.cluster.installation)
                #expect(try InstalledExtension.schema(of: viaExtension) == up, "\(module) back up from \(target.label)")
            }
        }
    }

    /// A table watched before 0023, whose columns are named n and o, is captured whole after the
    /// update on both paths, with a dropped watched table's registration left behind as well; under
    /// ALTER EXTENSION the new capture functions stay outside the extension.
    @Test func updatingTo0023MendsTheCaptureOfAWatchedTableWithColumnsNamedNAndO() throws {
        let table = """
            CREATE TABLE public.points (id int PRIMARY KEY, n int, o text); SELECT feed.watch('public.points');
            CREATE TABLE public.gone (id int PRIMARY KEY); SELECT feed.watch('public.gone'); DROP TABLE public.gone
            """
        func logged(_ connection: PGConnection) throws -> [String] {
            try connection.execute("INSERT INTO public.points VALUES (1, 42, 'x'); UPDATE public.points SET n = 43; DELETE FROM public.points")
            return try connection.query(
                "SELECT operation || ' ' || row_data::text FROM feed.change_log WHERE table_name = 'public.points' ORDER BY id").rows.map { $0[0]! }
        }
        let expected = [#"INSERT {"n": 42, "o": "x", "id": 1}"#, #"UPDATE {"n": 43, "o": "x", "id": 1}"#, #"DELETE {"n": 43, "o": "x", "id": 1}"#]

        let extensionDatabase = try InstalledExtension.database()
        let viaExtension = try extensionDatabase.connect()
        try viaExtension.execute("ALTER EXTENSION freshet_feed UPDATE TO '0022'; \(table)")
        #expect(throws: PostgresError.self, "0022's capture fails the UPDATE") { try logged(viaExtension) }
        try viaExtension.execute("ALTER EXTENSION freshet_feed UPDATE")
        #expect(try logged(viaExtension) == expected)
        #expect(try viaExtension.scalar(
            "SELECT count(*) FROM pg_depend d JOIN pg_proc p ON p.oid = d.objid WHERE d.deptype = 'e' AND p.proname ~ '^capture_[0-9]+_'") == "0")
        #expect(try viaExtension.scalar("SELECT feed.unwatch('public.points')") == "t")

        let runnerDatabase = try TestDatabase()
        let migrator = try Migrator(
            connection: runnerDatabase.connect(), directory: MigrationDirectory(path: BundleDatabase.migrationsPath),
            reporter: Reporter(verbosity: .quiet) { _ in }, options: MigratorOptions())
        _ = try migrator.up(to: 22)
        let viaRunner = try runnerDatabase.connect()
        try viaRunner.execute(table)
        _ = try migrator.up()
        #expect(try logged(viaRunner) == expected)
        #expect(try viaRunner.scalar("SELECT feed.unwatch('public.points')") == "t")
        #expect(try viaRunner.scalar("SELECT count(*) FROM feed.watched_tables") == "0", "the dropped table's registration is gone")
    }

    @Test func theLedgerMovesToItsViewsAndBackWithOneAlterExtensionEachAndTheFeedStays() throws {
        let database = try InstalledExtension.database()
        let connection = try database.connect()
        let stream = LedgerStream(seed: 7, atoms: 20, triples: 10, accounts: 40, events: 1_500)
        let moves = stream.moves.sorted()
        try LedgerTests.watchAccounts(connection, rows: 20)
        try stream.insert(stream.creations, into: connection, maximumBatch: 25)
        try stream.insert(Array(moves.prefix(1_000)), into: connection, maximumBatch: 13)
        try LedgerTests.drain(connection)
        let tables = try LedgerTests.digests(connection)
        let feed = try LedgerTests.feedDigest(connection)

        try connection.execute("ALTER EXTENSION freshet_ledger UPDATE TO '0006'")
        #expect(try InstalledExtension.versions(connection)["freshet_ledger"] == "0006")
        #expect(try connection.scalar("SELECT relkind::text FROM pg_class WHERE oid = 'ledger.position'::regclass") == "m")
        #expect(try LedgerTests.digests(connection) == tables, "the views hold exactly what the tables held")
        #expect(try LedgerTests.feedDigest(connection) == feed, "the feed is untouched")
        #expect(try InstalledExtension.versions(connection)["freshet_feed"] == "0023")

        try stream.insert(Array(moves.dropFirst(1_000)), into: connection, maximumBatch: 9)
        try connection.execute("SELECT ledger.refresh_all_views()")
        try connection.execute("ALTER EXTENSION freshet_ledger UPDATE")
        #expect(try connection.scalar("SELECT relkind::text FROM pg_class WHERE oid = 'ledger.position'::regclass") == "r")
        #expect(try LedgerTests.differences(connection) == 0, "verify() is empty after going forward again")
    }

    @Test func aDowngradeThatWouldChangeAnAggregateRefusesWithXX001AndChangesNothing() throws {
        let database = try InstalledExtension.database()
        let connection = try database.connect()
        let stream = LedgerStream(seed: 3, atoms: 8, triples: 4, accounts: 10, events: 200)
        try stream.insert(stream.creations, into: connection, maximumBatch: 25)
        try stream.insert(stream.moves.sorted(), into: connection, maximumBatch: 10)
        try LedgerTests.drain(connection)
        try connection.execute("UPDATE ledger.position SET total_redeem_assets = total_redeem_assets + 1 WHERE (account_id, term_id, curve_id) = (SELECT account_id, term_id, curve_id FROM ledger.position ORDER BY 1, 2, 3 LIMIT 1)")
        let corrupted = try LedgerTests.digests(connection)
        #expect {
            try connection.execute("ALTER EXTENSION freshet_ledger UPDATE TO '0006'")
        } throws: { ($0 as? PostgresError)?.sqlState == "XX001" }
        #expect(try InstalledExtension.versions(connection)["freshet_ledger"] == "0019")
        #expect(try LedgerTests.digests(connection) == corrupted, "every row as it was")
    }

    /// Each Freshet table's row count and a digest of its rows.
    static func rows(_ connection: PGConnection) throws -> [String: String] {
        var rows: [String: String] = [:]
        for table in try connection.query(
            """
            SELECT c.oid::regclass::text FROM pg_class c JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid
            JOIN pg_extension e ON e.oid = d.refobjid AND d.deptype = 'e' AND e.extname LIKE 'freshet%' WHERE c.relkind = 'r'
            """
        ).rows.map({ $0[0]! }) {
            rows[table] = try connection.scalar(
                "SELECT count(*) || ' rows ' || md5(coalesce(string_agg(x::text, ',' ORDER BY x::text), '')) FROM \(table) x")
        }
        return rows
    }

    @Test func aDumpRestoredIntoANewDatabaseHoldsTheSameRowsOnceAndGoesOn() throws {
        let database = try InstalledExtension.database()
        let connection = try database.connect()
        try connection.execute(
            """
            CREATE TABLE public.user_quotes (ticker text PRIMARY KEY, data jsonb NOT NULL, fetched_at timestamptz NOT NULL);
            SELECT refresh.register_data_type('user-quote', 'public', 'user_quotes', 'fetched_at', 'ticker', 'is_data_stale', 15, 1024, 'on-demand', 3);
            INSERT INTO public.user_quotes VALUES ('AAPL', '{"price": 1}', now() - interval '1 day');
            SELECT refresh.set_setting('max_attempts', '9');
            SELECT foundation.set_flag('use_update_trigger', NOT (SELECT enabled FROM foundation.feature_flags WHERE flag = 'use_update_trigger'));
            SELECT foundation.register_flag('restored_flag', 'a flag of the user''s own', true);
            SELECT jobs.set_schedule('refresh-stale-sweep', '*/7 * * * *');
            SELECT refresh.enqueue(ARRAY['user-quote', 'profile'], ARRAY['AAPL', 'MSFT'], 5, 2048);
            """)
        try LedgerTests.watchAccounts(connection, rows: 5)
        let stream = LedgerStream(seed: 11, atoms: 12, triples: 6, accounts: 20, events: 400)
        try stream.insert(stream.creations, into: connection, maximumBatch: 25)
        let moves = stream.moves.sorted()
        try stream.insert(Array(moves.prefix(300)), into: connection, maximumBatch: 17)
        try LedgerTests.drain(connection)
        let before = try Self.rows(connection)
        #expect(before["refresh.api_call_queue_pending"]?.hasPrefix("2 rows") == true, "two jobs are queued")

        // Every table that holds rows is in the dump, but the ledger's own definitions, which
        // CREATE EXTENSION writes, and the two lock tables.
        let unmarked = try connection.query(
            """
            SELECT c.oid::regclass::text FROM pg_class c JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid
            JOIN pg_extension e ON e.oid = d.refobjid AND d.deptype = 'e' AND e.extname LIKE 'freshet%'
            WHERE c.relkind = 'r' AND c.oid <> ALL (coalesce(e.extconfig, '{}')) ORDER BY 1
            """
        ).rows.map { $0[0]! }
        #expect(unmarked == ["feed.commit_gate", "ledger.aggregates", "refresh.claim_gate"])

        // As pg_restore --disable-triggers does for a data-only restore: the rows come back as dumped.
        let restored = try database.restoredCopy(environment: ["PGOPTIONS": "-c session_replication_role=replica"])
        let copy = try restored.connect()
        let after = try Self.rows(copy)
        for (table, digest) in before.sorted(by: { $0.key < $1.key }) {
            #expect(after[table] == digest, "\(table): \(digest) before the dump, \(after[table] ?? "missing") after the restore")
        }
        #expect(try LedgerTests.differences(copy) == 0, "ledger.verify() is empty after the restore")
        #expect(try copy.scalar("SELECT value FROM refresh.settings WHERE name = 'max_attempts'") == "9")
        #expect(try copy.scalar("SELECT schedule FROM jobs.schedules WHERE name = 'refresh-stale-sweep'") == "*/7 * * * *")

        // The watched table came back with another OID: its capture is set up again, and the
        // subscription resumes with the change written after the restore.
        let cursor = try #require(try copy.scalar("SELECT feed.current_cursor()"))
        #expect(try copy.scalar("SELECT feed.repair_after_restore()") == "1")
        try copy.execute("INSERT INTO app.accounts VALUES (6, 'after the restore')")
        #expect(try copy.scalar("SELECT string_agg(operation || ' ' || (row_data ->> 'id'), ',') FROM feed.changes_for('client-1', '\(cursor)')") == "INSERT 6")
        #expect(try copy.scalar("SELECT count(DISTINCT table_id) FROM feed.change_log") == "1", "every logged change names the restored table")

        // The restored database goes on: ids continue after the restored ones, and ingesting
        // more keeps the aggregates equal to their definitions.
        let newest = try #require(try copy.scalar("SELECT max(id) FROM refresh.api_call_queue"))
        try copy.execute("SELECT refresh.enqueue(ARRAY['quote'], ARRAY['NVDA'], 5, 512)")
        #expect(try copy.scalar("SELECT min(id) > \(newest) FROM refresh.api_call_queue WHERE symbol = 'NVDA'") == "t")
        try stream.insert(Array(moves.dropFirst(300)), into: copy, maximumBatch: 11)
        try LedgerTests.drain(copy)
        #expect(try LedgerTests.differences(copy) == 0, "ledger.verify() is empty after more events")
    }

    @Test func anUnknownVersionGetsPostgreSQLsOwnError() throws {
        let database = try InstalledExtension.database()
        #expect {
            try database.connect().execute("ALTER EXTENSION freshet_ledger UPDATE TO '0042'")
        } throws: { "\($0)".contains("has no update path from version \"0019\" to version \"0042\"") }
        let fresh = try TestDatabase()
        #expect {
            try fresh.connect().execute("CREATE EXTENSION freshet_foundation VERSION '9'")
        } throws: { "\($0)".contains("freshet_foundation") && "\($0)".contains("\"9\"") }
    }

    /// pg_cron keeps its jobs in its own table, out of DROP EXTENSION's reach: jobs.unschedule_all()
    /// is the documented step, and without it the jobs stay.
    @Test func removingFreshetLeavesNoJobAndNoTriggerOnAUsersTable() throws {
        let cluster = try PostgresCluster.disposable(cronDatabase: "removed")
        defer { cluster.stop() }
        try InstalledExtension.require(cluster)
        guard cluster.installation.hasPgCron else { throw MigrateError.cluster("pg_cron is not installed: run `make deps`") }
        let connection = try cluster.connect(database: "removed")
        func jobs() throws -> Int { Int(try connection.scalar("SELECT count(*) FROM cron.job") ?? "") ?? -1 }
        func install() throws {
            try connection.execute(
                """
                CREATE EXTENSION freshet CASCADE;
                CREATE SCHEMA IF NOT EXISTS app;
                CREATE TABLE app.notes (id bigint PRIMARY KEY, body text);
                SELECT feed.watch('app.notes');
                """)
        }
        try connection.execute("CREATE EXTENSION pg_cron")
        try install()
        let scheduled = Int(try connection.scalar("SELECT count(*) FROM jobs.schedules") ?? "") ?? -1
        let live = try jobs()
        #expect(scheduled > 5 && live == scheduled, "with pg_cron present the schedules are live")
        #expect(try connection.scalar("SELECT count(*) FROM pg_trigger WHERE tgrelid = 'app.notes'::regclass") != "0")

        try connection.execute("DROP EXTENSION freshet_foundation CASCADE")
        #expect(try jobs() == scheduled, "DROP EXTENSION alone leaves pg_cron's jobs behind")
        try connection.execute("SELECT cron.unschedule(jobid) FROM cron.job; DROP TABLE app.notes")

        try install()
        #expect(try connection.scalar("SELECT jobs.unschedule_all()") == String(scheduled))
        try connection.execute("DROP EXTENSION freshet_foundation CASCADE")
        #expect(try jobs() == 0)
        #expect(try connection.scalar("SELECT count(*) FROM pg_trigger WHERE tgrelid = 'app.notes'::regclass") == "0")
        #expect(try connection.scalar("SELECT count(*) FROM pg_extension WHERE extname LIKE 'freshet%'") == "0")
        #expect(try connection.scalar("SELECT count(*) FROM pg_namespace WHERE nspname IN ('foundation', 'jobs', 'refresh', 'ledger', 'feed')") == "0")
        #expect(try connection.scalar("SELECT count(*) FROM app.notes") == "0", "the user's table stays")
    }

    @Test func thePathsDoNotMix() throws {
        let extensionDatabase = try InstalledExtension.database()
        #expect {
            try Migrator(connection: extensionDatabase.connect(), directory: InstalledExtension.bundle,
                         reporter: extensionDatabase.output.reporter, options: MigratorOptions()).up()
        } throws: { "\($0)".contains("has the extension freshet_feed 0023 installed") && "\($0)".contains("ALTER EXTENSION") }
        #expect(try extensionDatabase.scalar("SELECT to_regclass('migrate.history') IS NULL") == "t", "the refusal wrote nothing")

        let migrated = try BundleDatabase.fresh()
        #expect {
            try migrated.connect().execute("CREATE EXTENSION freshet CASCADE")
        } throws: { error in
            "\(error)".contains("freshet_foundation: migrate manages this module here (migrate.history records foundation/0001_foundation)")
        }
        #expect(try migrated.scalar("SELECT count(*) FROM pg_extension WHERE extname LIKE 'freshet%'") == "0")
    }
}
