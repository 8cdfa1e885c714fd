import Foundation
import Testing

@testable import Freshet
import FreshetTestSupport

/// Three modules: `base`; `users`, which needs base; `audit`, which needs base and, from its second
/// step, users' second.
func threeModules() throws -> MigrationFixture {
    let fixture = try MigrationFixture()
    try fixture.add("base/1_schema", "CREATE SCHEMA app;", down: "DROP SCHEMA app;")
    try fixture.add("base/4_helpers", "CREATE FUNCTION app.one() RETURNS int LANGUAGE sql AS 'SELECT 1';", down: "DROP FUNCTION app.one();")
    try fixture.add("users/2_users", "CREATE TABLE app.users (id int PRIMARY KEY);", down: "DROP TABLE app.users;")
    try fixture.add("users/5_names", "ALTER TABLE app.users ADD COLUMN name text;", down: "ALTER TABLE app.users DROP COLUMN name;")
    try fixture.add("audit/3_log", "CREATE TABLE app.audit (at timestamptz DEFAULT now());", down: "DROP TABLE app.audit;")
    try fixture.add("audit/6_who", "ALTER TABLE app.audit ADD COLUMN who text;", down: "ALTER TABLE app.audit DROP COLUMN who;")
    try fixture.write("users/requires", "# users needs the schema\n2: base 1\n")
    try fixture.write("audit/requires", "3: base 1\n6: users 5, base 4  # the second step reads users' names\n")
    return fixture
}

@Suite struct ModuleTests {
    @Test func aDirectoryOfFoldersIsModulesWithTheirRequirements() throws {
        let directory = try threeModules().directory()
        #expect(directory.modules == ["base", "users", "audit"])
        #expect(directory.migrations.map(\.label) == ["base/1_schema", "users/2_users", "audit/3_log", "base/4_helpers", "users/5_names", "audit/6_who"])
        #expect(directory.requirements[6]?.map { "\($0.module) \($0.atLeast)" } == ["users 5", "base 4"])
    }

    @Test func aBadRequiresFileNamesItsFileAndLine() throws {
        let fixture = try threeModules()
        try fixture.write("audit/requires", "3: base 1\n6: nobody 5\n7: base 1\n6 users\n6: users 99\n6: audit 3\n")
        #expect {
            try fixture.directory()
        } throws: { error in
            let text = "\(error)"
            return text.contains("audit/requires:2: there is no module nobody") && text.contains("audit/requires:3: audit has no migration with version 7")
                && text.contains("audit/requires:4: expected") && text.contains("audit/requires:5: users has no migration with version 99")
                && text.contains("audit/requires:6: a module's own earlier migrations always come first")
        }
    }

    @Test func upAppliesEveryModuleInDependencyOrderAndAModuleWithWhatItNeeds() throws {
        let database = try TestDatabase()
        let fixture = try threeModules()
        let plan = try database.migrator(fixture).up(to: 3, module: "audit")
        #expect(plan.map(\.label) == ["base/1_schema", "audit/3_log"], "audit's first step needs only base 1")
        #expect(try database.migrator(fixture).up(module: "audit").map(\.label) == ["users/2_users", "base/4_helpers", "users/5_names", "audit/6_who"])
        #expect(try database.scalar("SELECT string_agg(module || ' ' || version, ', ' ORDER BY version) FROM migrate.history")
            == "base 1, users 2, audit 3, base 4, users 5, audit 6")
        #expect(database.output.lines.contains { $0.contains("also applying, because audit requires them: users/2_users, base/4_helpers, users/5_names") })
    }

    @Test func aRequirementAboveTheTargetIsRefused() throws {
        let fixture = try threeModules()
        try fixture.write("users/requires", "2: base 4\n")
        let database = try TestDatabase()
        #expect {
            try database.migrator(fixture).up(to: 3)
        } throws: { "\($0)".contains("users/2_users.up.sql requires base/4_helpers.up.sql, which is above --to 3") }
        try fixture.write("base/requires", "4: users 2\n")
        #expect {
            try database.migrator(fixture).up()
        } throws: { "\($0)".contains("cycle") }
    }

    @Test func downOfAModuleTakesItsDependentsFirstAndLeavesTheRest() throws {
        let database = try TestDatabase()
        let fixture = try threeModules()
        try database.migrator(fixture).up()
        let plan = try database.migrator(fixture).down(.steps(1), module: "users")
        #expect(plan.map(\.label) == ["audit/6_who", "users/5_names"], "audit's second step needs users 5, so it goes first")
        #expect(database.output.lines.contains { $0.contains("also rolling back, because they require what is rolled back: audit/6_who") })
        #expect(try database.scalar("SELECT string_agg(version::text, ',' ORDER BY version) FROM migrate.history") == "1,2,3,4")
        try database.migrator(fixture).up()
        #expect(try database.migrator(fixture).down(.all, module: "audit").map(\.version) == [6, 3], "nothing needs audit")
        #expect(try database.scalar("SELECT string_agg(version::text, ',' ORDER BY version) FROM migrate.history") == "1,2,4,5")
        #expect {
            try database.migrator(fixture).down(module: "nobody")
        } throws: { "\($0)".contains("there is no module nobody; the modules are base, users, audit") }
    }

    @Test func aDryRunPrintsTheWholePlanDependentsIncluded() throws {
        let database = try TestDatabase()
        let fixture = try threeModules()
        try database.migrator(fixture).up()
        let outcome = try MigrateBinary.run(["down", "--module", "base", "--steps", "1", "--dry-run", "--dir", fixture.path, "--url", database.url])
        #expect(outcome.status == 0, "\(outcome.output)")
        #expect(outcome.output.contains("also rolling back, because they require what is rolled back: audit/6_who"))
        let plan = outcome.output.split(separator: "\n").filter { $0.hasPrefix("would roll back") }
        #expect(plan == ["would roll back audit/6_who.down.sql", "would roll back base/4_helpers.down.sql"], "\(outcome.output)")
        #expect(try database.count("SELECT count(*) FROM migrate.history") == 6, "a dry run changes nothing")
    }

    /// The bundle's feed declares nothing derived: rolling it back with changes in its log refuses.
    @Test func rollingTheFeedBackWithChangesInItsLogIsRefused() throws {
        let database = try BundleDatabase.fresh()
        let connection = try database.connect()
        try connection.execute(
            """
            CREATE SCHEMA app;
            CREATE TABLE app.notes (id bigint PRIMARY KEY, body text);
            SELECT feed.watch('app.notes');
            INSERT INTO app.notes VALUES (1, 'kept');
            """)
        let bundle = try MigrationDirectory(path: BundleDatabase.migrationsPath)
        let make = { (allow: Bool) in
            var options = MigratorOptions()
            options.allowDataLoss = allow
            return Migrator(connection: try database.connect(), directory: bundle, reporter: database.output.reporter, options: options)
        }
        #expect {
            try make(false).down(.all, module: "feed")
        } throws: { "\($0)".contains("feed/0008_feed.down.sql drops data") && "\($0)".contains("table feed.change_log (1 row)") }
        #expect(try connection.scalar("SELECT count(*) FROM feed.change_log") == "1", "the log is kept")
        #expect(try connection.scalar("SELECT count(*) FROM migrate.history WHERE module = 'feed'") == "1", "only 0020 and 0013 went")
        #expect(try make(true).down(.all, module: "feed").map(\.version) == [8])
        #expect(try connection.scalar("SELECT to_regclass('feed.change_log') IS NULL") == "t")
        #expect(try connection.scalar("SELECT count(*) FROM migrate.history") == "17", "every other module stays")
    }

    @Test func statusShowsEachModulesVersion() throws {
        let database = try TestDatabase()
        let fixture = try threeModules()
        try database.migrator(fixture).up(module: "users")
        let outcome = try MigrateBinary.run(["status", "--dir", fixture.path, "--url", database.url])
        #expect(outcome.output.contains("modules: base 1, users 5, audit none"), "\(outcome.output)")
        #expect(outcome.output.contains("pending   3                    audit/log"))
        let json = try MigrateBinary.run(["status", "--json", "--dir", fixture.path, "--url", database.url])
        let document = try JSONDecoder().decode(StatusReport.Document.self, from: Data(json.output.utf8))
        #expect(document.summary.modules["users"] == .init(currentVersion: 5, latestVersion: 5))
        #expect(document.summary.modules["audit"] == .init(currentVersion: nil, latestVersion: 6))
        #expect(document.migrations.first { $0.version == 3 }?.module == "audit")
    }

    @Test func historyFromBeforeModulesIsUpgradedInPlace() throws {
        let database = try TestDatabase()
        let fixture = try threeModules()
        try database.migrator(fixture).up()
        // The previous runner's bookkeeping: history keyed by version alone, events without modules.
        try database.connect().execute(
            """
            ALTER TABLE migrate.history DROP CONSTRAINT history_pkey, DROP COLUMN module, ADD PRIMARY KEY (version);
            ALTER TABLE migrate.events DROP COLUMN module, DROP CONSTRAINT events_action_check,
                ADD CONSTRAINT events_action_check CHECK (action IN ('applied', 'rolled_back', 'failed', 'repaired', 'forced', 'baselined'));
            """)
        let before = try MigrateBinary.run(["status", "--dir", fixture.path, "--url", database.url])
        #expect(before.output.contains("6 applied"), "status reads the old history: \(before.output)")
        #expect(try database.migrator(fixture).up().isEmpty)
        #expect(try database.scalar("SELECT string_agg(module || ' ' || version, ', ' ORDER BY version) FROM migrate.history")
            == "base 1, users 2, audit 3, base 4, users 5, audit 6")
        #expect(try database.count("SELECT count(*) FROM migrate.events WHERE action = 'assigned'") == 6)
        #expect(try database.scalar("SELECT string_agg(a.attname, ',' ORDER BY k.n) FROM pg_index i, unnest(i.indkey) WITH ORDINALITY k(attnum, n), pg_attribute a WHERE i.indrelid = 'migrate.history'::regclass AND i.indisprimary AND a.attrelid = i.indrelid AND a.attnum = k.attnum") == "module,version")
        #expect(try database.migrator(fixture).down(.steps(1), module: "base").map(\.label) == ["audit/6_who", "base/4_helpers"])
    }

    @Test func eightRunnersAtOnceApplyEachMigrationExactlyOnce() throws {
        let database = try TestDatabase()
        let fixture = try threeModules()
        let modules = ["base", "users", "audit", nil, "audit", "users", nil, "base"]
        let failures = LockedList()
        let (conninfo, path) = (database.conninfo, fixture.path)
        DispatchQueue.concurrentPerform(iterations: modules.count) { index in
            do { try migrator(conninfo: conninfo, path: path).up(module: modules[index]) } catch { failures.append("\(error)") }
        }
        #expect(failures.items.isEmpty, "\(failures.items)")
        #expect(try database.scalar("SELECT string_agg(version || ':' || n, ',' ORDER BY version) FROM (SELECT version, count(*) n FROM migrate.events WHERE action = 'applied' GROUP BY version) e")
            == "1:1,2:1,3:1,4:1,5:1,6:1")
    }
}

/// The data-loss guard, on a flat directory.
@Suite struct DataLossGuardTests {
    func fixture() throws -> MigrationFixture {
        let fixture = try MigrationFixture()
        try fixture.add("1_regions", "CREATE TABLE regions (id int PRIMARY KEY); INSERT INTO regions VALUES (1), (2), (3);", down: "DROP TABLE regions;")
        try fixture.add("2_codes", "ALTER TABLE regions ADD COLUMN code text; UPDATE regions SET code = 'r' || id WHERE id < 3;", down: "ALTER TABLE regions DROP COLUMN code;")
        try fixture.add("3_scratch", "CREATE TABLE scratch (id int);", down: "DROP TABLE scratch;")
        return fixture
    }

    @Test func aDownThatDropsAnEmptyTableRuns() throws {
        let database = try TestDatabase()
        let fixture = try fixture()
        try database.migrator(fixture).up()
        #expect(try database.migrator(fixture).down().map(\.version) == [3])
        #expect(try !database.tableExists("scratch"))
    }

    /// In one transaction a later step no longer sees what an earlier one dropped, and a refusal
    /// rolls back every step.
    @Test func theGuardWorksAcrossOneTransactionForEveryStep() throws {
        let database = try TestDatabase()
        let fixture = try fixture()
        try database.migrator(fixture).up()
        #expect {
            try database.migrator(fixture) { $0.singleTransaction = true }.down(.all)
        } throws: { "\($0)".contains("2_codes.down.sql drops data") && "\($0)".contains("column public.regions.code (2 values)") }
        #expect(try database.count("SELECT count(*) FROM migrate.history") == 3, "nothing of the transaction was kept")
        #expect(try database.tableExists("scratch"))
        let rolledBack = try database.migrator(fixture) { $0.singleTransaction = true; $0.allowDataLoss = true }.down(.all)
        #expect(rolledBack.map(\.version) == [3, 2, 1])
        #expect(try database.count("SELECT count(*) FROM migrate.events WHERE action = 'data_loss_allowed'") == 2, "the column's values and the table's rows")
    }

    @Test func aDroppedColumnWithValuesIsRefusedAndKept() throws {
        let database = try TestDatabase()
        let fixture = try fixture()
        try database.migrator(fixture).up(to: 2)
        #expect {
            try database.migrator(fixture).down()
        } throws: { "\($0)".contains("2_codes.down.sql drops data, so it was rolled back and nothing changed: column public.regions.code (2 values)") }
        #expect(try database.count("SELECT count(code) FROM regions") == 2, "the column and its values are still there")
        #expect(try database.count("SELECT count(*) FROM migrate.history") == 2)
    }

    @Test func aDroppedTableWithRowsIsRefusedUnlessAllowedAndTheAllowanceIsRecorded() throws {
        let database = try TestDatabase()
        let fixture = try fixture()
        try database.migrator(fixture).up(to: 1)
        #expect {
            try database.migrator(fixture).down()
        } throws: { error in
            "\(error)".contains("1_regions.down.sql drops data") && "\(error)".contains("table public.regions (3 rows)")
                && "\(error)".contains("--allow-data-loss")
        }
        #expect(try database.count("SELECT count(*) FROM regions") == 3)
        #expect(try database.events() == ["1:applied"], "a refusal records nothing")
        #expect(try database.migrator(fixture) { $0.allowDataLoss = true }.down().map(\.version) == [1])
        #expect(try !database.tableExists("regions"))
        #expect(try database.events() == ["1:applied", "1:data_loss_allowed", "1:rolled_back"])
        #expect(try database.scalar("SELECT detail FROM migrate.events WHERE action = 'data_loss_allowed'")
            == "dropped with --allow-data-loss: table public.regions (3 rows)")
    }

    /// A policy that hides rows from the table's own owner cannot make the guard count them as none.
    @Test func rowsHiddenByRowLevelSecurityStillCount() throws {
        let database = try TestDatabase()
        let owner = "guard_owner_\(getpid())"
        try database.connect().execute(
            """
            CREATE ROLE \(owner) LOGIN;
            GRANT CREATE ON DATABASE \(database.name) TO \(owner);
            GRANT CREATE ON SCHEMA public TO \(owner);
            """)
        defer { _ = try? database.connect().execute("DROP OWNED BY \(owner); DROP ROLE \(owner)") }
        let fixture = try MigrationFixture()
        try fixture.add(
            "1_hidden",
            """
            CREATE TABLE hidden (id int);
            ALTER TABLE hidden ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
            CREATE POLICY nothing_visible ON hidden USING (false) WITH CHECK (true);
            INSERT INTO hidden VALUES (1), (2);
            """, down: "DROP TABLE hidden;")
        let asOwner = { Migrator(
            connection: try PGConnection(conninfo: database.conninfo + " user=\(owner)"), directory: try fixture.directory(),
            reporter: database.output.reporter, options: MigratorOptions()) }
        try asOwner().up()
        #expect(try PGConnection(conninfo: database.conninfo + " user=\(owner)").scalar("SELECT count(*) FROM hidden") == "0",
            "the owner sees none of its rows")
        #expect {
            try asOwner().down()
        } throws: { "\($0)".contains("table public.hidden (cannot be counted with row-level security off, so it may hold data)") }
        #expect(try database.count("SELECT count(*) FROM hidden") == 2, "the rows are still there")
    }

    @Test func aDownDeclaringItsDataDerivedRunsAndSaysWhy() throws {
        let database = try TestDatabase()
        let fixture = try MigrationFixture()
        try fixture.add("1_totals", "CREATE TABLE totals AS SELECT 1 AS n;",
                        down: "-- migrate:derived totals is a sum of the events, which stay\nDROP TABLE totals;")
        try database.migrator(fixture).up()
        #expect(try database.migrator(fixture).down().map(\.version) == [1])
        #expect(database.output.lines.contains { $0.contains("declares derived: totals is a sum of the events, which stay") })
    }

    @Test func theDerivedDirectiveBelongsToDownFilesAndGivesAReason() throws {
        let fixture = try MigrationFixture()
        try fixture.add("1_a", "-- migrate:derived nothing\nSELECT 1;")
        try fixture.add("2_b", "SELECT 1;", down: "-- migrate:derived\nSELECT 1;")
        let directory = try fixture.directory()
        #expect(throws: MigrateError.self) { try TransactionPolicy.plan(directory.migration(version: 1)!.up) }
        #expect { try TransactionPolicy.plan(directory.migration(version: 2)!.down!) } throws: { "\($0)".contains("must say how") }
    }

    @Test func aRowWrittenBetweenCountingAndDroppingIsNotLost() throws {
        // The guard counts after rolling the step back, then runs it again with the table locked
        // and checked empty: a row that lands in between makes it count again and refuse.
        let database = try TestDatabase()
        let fixture = try MigrationFixture()
        try fixture.add("1_inbox", "CREATE TABLE inbox (id int);", down: "SELECT pg_sleep(0.3); DROP TABLE inbox;")
        try database.migrator(fixture).up()
        let writer = try database.connect()
        let done = DispatchSemaphore(value: 0)
        let outcome = LockedList()
        let (conninfo, path) = (database.conninfo, fixture.path)
        DispatchQueue.global().async {
            do { _ = try migrator(conninfo: conninfo, path: path).down() } catch { outcome.append("\(error)") }
            done.signal()
        }
        usleep(450_000)  // inside the second attempt's sleep: the first found the table empty
        var written = false
        do {
            try writer.execute("INSERT INTO inbox VALUES (1)")
            written = true
        } catch {}
        done.wait()
        if written {
            #expect(try database.count("SELECT count(*) FROM inbox") == 1, "a row that was written survives")
            #expect(outcome.items.first?.contains("table public.inbox (1 row)") == true, "\(outcome.items)")
        } else {
            #expect(try !database.tableExists("inbox"), "the write waited for the drop and failed: \(outcome.items)")
        }
    }
}

/// A migrator made from plain values, for other threads.
func migrator(conninfo: String, path: String, lines: LockedList? = nil) throws -> Migrator {
    var options = MigratorOptions()
    options.lockWait = 60
    return Migrator(
        connection: try PGConnection(conninfo: conninfo), directory: try MigrationDirectory(path: path),
        reporter: Reporter(verbosity: .normal) { lines?.append($0) }, options: options)
}

/// A list several threads append to.
final class LockedList: @unchecked Sendable {
    private let lock = NSLock()
    private var storage: [String] = []
    func append(_ item: String) { lock.lock(); storage.append(item); lock.unlock() }
    var items: [String] { lock.lock(); defer { lock.unlock() }; return storage }
}
