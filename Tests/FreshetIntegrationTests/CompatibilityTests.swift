import Foundation
import Testing

@testable import Freshet
import FreshetTestSupport

/// The fixture directories under Tests/fixtures, each written the way golang-migrate or dbmate users write them.
enum Fixtures {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("fixtures").path

    static func directory(_ name: String) throws -> MigrationDirectory {
        try MigrationDirectory(path: "\(root)/\(name)")
    }
}

extension TestDatabase {
    func migrator(_ directory: MigrationDirectory, _ configure: (inout MigratorOptions) -> Void = { _ in }) throws -> Migrator {
        var options = MigratorOptions()
        options.lockWait = 10
        configure(&options)
        return Migrator(connection: try connect(), directory: directory, reporter: output.reporter, options: options)
    }

    func snapshot() throws -> SchemaSnapshot {
        try SchemaSnapshot(conninfo: conninfo, installation: cluster.installation)
    }

    /// Goes up, rolls everything back and goes up again, checking the schema returns to empty and then to the same schema.
    func roundTrip(_ directory: MigrationDirectory, _ configure: (inout MigratorOptions) -> Void = { _ in }) throws {
        let empty = try snapshot()
        let applied = try migrator(directory, configure).up()
        #expect(applied.map(\.version) == directory.migrations.map(\.version))
        let migrated = try snapshot()
        #expect(migrated != empty)
        // The fixtures' rows go with their tables: the data-loss guard has its own tests.
        try migrator(directory) { configure(&$0); $0.allowDataLoss = true }.down(.all)
        #expect(try snapshot() == empty, "rolling everything back leaves the schema as it was")
        #expect(try count("SELECT count(*) FROM migrate.history") == 0)
        try migrator(directory, configure).up()
        #expect(try snapshot() == migrated, "the second up makes the same schema")
    }
}

@Suite struct GolangMigrateCompatibilityTests {
    @Test func upAndDownFilesPairByVersionAloneAndVersionZeroIsAVersion() throws {
        let directory = try Fixtures.directory("golang-migrate/pairs-by-version")
        #expect(directory.migrations.map(\.version) == [0, 30, 31])
        #expect(directory.migration(version: 30)?.down?.fileName == "30_drop_magic_metadata.down.sql")
        let database = try TestDatabase()
        try database.roundTrip(directory)
        #expect(try database.events().filter { $0.hasPrefix("0:") } == ["0:applied", "0:rolled_back", "0:applied"])
    }

    @Test func filesThatManageTheirOwnTransactionsRunAsTheyAreWritten() throws {
        let directory = try Fixtures.directory("golang-migrate/own-transactions")
        let plans = try directory.migrations.map { try TransactionPolicy.plan($0.up).mode }
        #expect(plans == [
            .ownWrapper(beginLine: 2, commitLine: 5),
            .noTransaction(.ownTransactions(blocks: 2, outside: 1)),
            .noTransaction(.onlyNonTransactional("CREATE INDEX CONCURRENTLY")),
        ])
        let database = try TestDatabase()
        try database.roundTrip(directory)
        let text = database.output.text
        #expect(text.contains("1_wrapped.up.sql: its own BEGIN (line 2) ... COMMIT (line 5) is the migration's transaction"), "\(text)")
        #expect(text.contains("2_two_blocks.up.sql: it manages its own transactions (2 BEGIN ... COMMIT blocks, 1 statement outside them)"))
        #expect(text.contains("3_lone_concurrent_index.up.sql: CREATE INDEX CONCURRENTLY cannot run inside a transaction"))
        #expect(try database.scalar("SELECT indisvalid FROM pg_index WHERE indexrelid = 'invoices_total'::regclass") == "t")
        #expect(try database.scalar("SELECT note FROM audit") == "created")
    }

    @Test func aWrappedFileCommitsWithItsHistoryRowOrNotAtAll() throws {
        let database = try TestDatabase()
        let fixture = try MigrationFixture()
        // The failure comes after the file's own statements: the history row and the table go together.
        try fixture.add("1_wrapped", "BEGIN;\nCREATE TABLE kept (id int);\nSELECT 1/0;\nCOMMIT;\n")
        do {
            try database.migrator(fixture).up()
            Issue.record("the division by zero should fail the migration")
        } catch MigrateError.migrationFailed(let failure) {
            #expect(failure.location?.line == 3)
            #expect(failure.description.contains("Nothing from 1_wrapped.up.sql was kept"), "\(failure)")
        }
        #expect(try !database.tableExists("kept"))
        #expect(try database.count("SELECT count(*) FROM migrate.history") == 0)
        #expect(try database.connect().scalar("SELECT 1") == "1")
    }

    @Test func aFailureInsideAnOwnBlockRollsBackThatBlockOnly() throws {
        let database = try TestDatabase()
        let fixture = try MigrationFixture()
        try fixture.add("1_blocks", "BEGIN;\nCREATE TABLE first_block (id int);\nCOMMIT;\nBEGIN;\nCREATE TABLE second_block (id int);\nSELECT 1/0;\nCOMMIT;\n")
        do {
            try database.migrator(fixture).up()
            Issue.record("the division by zero should fail the migration")
        } catch MigrateError.migrationFailed(let failure) {
            #expect(failure.location?.line == 6)
            #expect(!failure.rolledBack)
            #expect(failure.note == "The transaction the file opened at line 4 was rolled back.")
        }
        #expect(try database.tableExists("first_block"))
        #expect(try !database.tableExists("second_block"))
        #expect(try database.scalar("SELECT state || ' ' || failed_statement FROM migrate.history") == "failed 6")
    }

    @Test func aMissingDownFileIsRefusedNamingTheFlagThenRolledBackThroughWithIt() throws {
        let directory = try Fixtures.directory("golang-migrate/missing-down")
        let database = try TestDatabase()
        try database.migrator(directory).up()
        do {
            try database.migrator(directory).down(.all)
            Issue.record("a missing down file should be refused")
        } catch {
            #expect("\(error)".contains("2_seed_regions.down.sql is missing"))
            #expect("\(error)".contains("--allow-missing-down"))
        }
        #expect(try database.count("SELECT count(*) FROM migrate.history") == 2, "the refusal changed nothing")
        try database.migrator(directory) { $0.allowMissingDown = true; $0.allowDataLoss = true }.down(.all)
        #expect(try database.events().suffix(4) == ["2:forced", "2:rolled_back", "1:data_loss_allowed", "1:rolled_back"])
        try database.roundTrip(directory) { $0.allowMissingDown = true }
    }

    @Test func everyRefusalIsListedInOneRun() throws {
        let fixture = try MigrationFixture()
        try fixture.add("1_mixed", "CREATE TABLE t (a int);\nCREATE INDEX CONCURRENTLY ti ON t (a);\n")
        try fixture.add("2_unbalanced", "BEGIN;\nSELECT 1;\n")
        try fixture.add("3_nested", "BEGIN;\nBEGIN;\nCOMMIT;\n")
        try fixture.add("4_stray_commit", "SELECT 1;\nCOMMIT;\n")
        try fixture.add("5_fine", "SELECT 1;")
        try fixture.write("6_bad name.up.sql", "SELECT 1;")
        try fixture.write("7_orphan.down.sql", "SELECT 1;")
        #expect {
            try fixture.directory()
        } throws: { error in
            let text = "\(error)"
            return text.contains("6_bad name.up.sql") && text.contains("7_orphan.down.sql has no matching .up.sql")
        }
        try FileManager.default.removeItem(atPath: "\(fixture.path)/6_bad name.up.sql")
        try FileManager.default.removeItem(atPath: "\(fixture.path)/7_orphan.down.sql")
        let database = try TestDatabase()
        do {
            try database.migrator(fixture).up()
            Issue.record("the plan should be refused")
        } catch let error as MigrateError {
            let text = "\(error)"
            #expect(text.contains("1_mixed.up.sql:2: CREATE INDEX CONCURRENTLY cannot run inside a transaction block"), "\(text)")
            #expect(text.contains("2_unbalanced.up.sql:1: this BEGIN opens a transaction the file never commits"), "\(text)")
            #expect(text.contains("3_nested.up.sql:2: BEGIN inside the transaction opened at line 1"), "\(text)")
            #expect(text.contains("4_stray_commit.up.sql:2: COMMIT with no transaction open"), "\(text)")
            #expect(!text.contains("5_fine"))
        }
        #expect(try database.count("SELECT count(*) FROM migrate.history") == 0, "nothing ran, not even the fine file")
    }
}

@Suite struct DbmateCompatibilityTests {
    @Test func dbmateFilesGoUpDownAndUpAgain() throws {
        let directory = try Fixtures.directory("dbmate")
        let index = try #require(directory.migration(version: 20_240_102_090_000))
        #expect(index.up.isNonTransactional && index.down?.isNonTransactional == true)
        #expect(index.down?.firstLine == 4)
        #expect(SumFile(directory: directory).entries.map(\.fileName).first == "20240101090000_create_users.sql#up")
        let database = try TestDatabase()
        try database.roundTrip(directory)
        #expect(try database.scalar("SELECT indisvalid FROM pg_index WHERE indexrelid = 'users_email'::regclass") == "t")
    }

    @Test func anErrorInADownSectionNamesTheLineOfTheFile() throws {
        let fixture = try MigrationFixture()
        try fixture.write("20240101000000_t.sql", "-- migrate:up\nCREATE TABLE t (id int);\n\n-- migrate:down\nDROP TABLE t;\nSELECT no_such_column FROM pg_class;\n")
        let database = try TestDatabase()
        try database.migrator(fixture).up()
        do {
            try database.migrator(fixture).down()
            Issue.record("the down section should fail")
        } catch MigrateError.migrationFailed(let failure) {
            #expect(failure.file == "20240101000000_t.sql")
            #expect(failure.location == SourceLocation(line: 6, column: 8))
            #expect(failure.lineText == "SELECT no_such_column FROM pg_class;")
        }
        #expect(try database.tableExists("t"), "the down section rolled back whole")
    }

    @Test(arguments: [
        ("CREATE TABLE early (id int);\n-- migrate:up\nSELECT 1;\n", "1: malformed dbmate migration: statements before `-- migrate:up`"),
        ("-- migrate:up\nSELECT 1;\n-- migrate:up\nSELECT 2;\n", "3: malformed dbmate migration: a second `-- migrate:up`"),
        ("-- migrate:down\nSELECT 1;\n", "1: malformed dbmate migration: `-- migrate:down` comes before"),
        ("-- migrate:up transaction:maybe\nSELECT 1;\n", "1: malformed dbmate migration: unknown option `transaction:maybe`"),
    ])
    func malformedDbmateFilesAreNamed(text: String, says: String) throws {
        let fixture = try MigrationFixture()
        try fixture.write("20240101000000_bad.sql", text)
        #expect {
            try fixture.directory()
        } throws: { error in
            "\(error)".contains("20240101000000_bad.sql:\(says)")
        }
    }
}

@Suite struct BaselineTests {
    @Test func adoptsAGolangMigrateDatabaseAndRefusesADirtyOne() throws {
        let directory = try Fixtures.directory("golang-migrate/pairs-by-version")
        let database = try TestDatabase()
        // What golang-migrate leaves after `migrate up 1` over this directory: version 30, clean.
        try database.connect().execute("""
            CREATE TABLE accounts (id bigint PRIMARY KEY, magic_metadata jsonb);
            CREATE TABLE schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL);
            INSERT INTO schema_migrations VALUES (30, true);
            """)
        do {
            try database.migrator(directory).up()
            Issue.record("up should stop at another tool's table")
        } catch {
            #expect("\(error)".contains("managed by golang-migrate: schema_migrations is at version 30 (dirty)"), "\(error)")
            #expect("\(error)".contains("migrate baseline"))
        }
        #expect(try !database.tableExists("migrate.history"), "the refusal left the database as it was")
        do {
            try database.migrator(directory).baseline(version: nil)
            Issue.record("a dirty version should be refused")
        } catch {
            #expect("\(error)".contains("marks version 30 dirty"), "\(error)")
        }
        try database.connect().execute("UPDATE schema_migrations SET dirty = false")
        #expect(try database.migrator(directory).baseline(version: nil).map(\.version) == [0, 30])
        #expect(try database.events() == ["0:baselined", "30:baselined"])
        #expect(try database.migrator(directory).up().map(\.version) == [31])
        #expect(try database.tableExists("sessions"))
        #expect(throws: MigrateError.self, "a second baseline is refused") { try database.migrator(directory).baseline(version: 31) }
        let checksum = try database.scalar("SELECT up_checksum FROM migrate.history WHERE version = 30")
        #expect(checksum == directory.migration(version: 30)?.up.checksum.description)
    }

    @Test func adoptsADbmateDatabase() throws {
        let directory = try Fixtures.directory("dbmate")
        let database = try TestDatabase()
        try database.connect().execute("""
            CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL);
            CREATE TABLE schema_migrations (version character varying(128) PRIMARY KEY);
            INSERT INTO schema_migrations VALUES ('20240101090000');
            """)
        #expect(try database.migrator(directory).baseline(version: nil).map(\.version) == [20_240_101_090_000])
        #expect(try database.migrator(directory).up().map(\.version) == [20_240_102_090_000, 20_240_103_090_000])
        #expect(try database.migrator(directory).down(.all).count == 3)
        #expect(try !database.tableExists("users"))
    }

    @Test func baselinesAHandMigratedDatabaseAtAVersion() throws {
        let directory = try Fixtures.directory("golang-migrate/own-transactions")
        let database = try TestDatabase()
        do {
            try database.migrator(directory).baseline(version: nil)
            Issue.record("without a table or a version there is nothing to baseline from")
        } catch {
            #expect("\(error)".contains("as in `migrate baseline 42`"))
        }
        #expect(try database.migrator(directory).baseline(version: 2).map(\.version) == [1, 2])
        #expect(try database.scalar("SELECT string_agg(detail, '|') FROM migrate.events") == "baseline at version 2, given by hand|baseline at version 2, given by hand")
    }
}
