import Foundation
import Testing

@testable import Freshet
import FreshetTestSupport

@Suite struct DriftTests {
    func problems(_ body: () throws -> Void) -> [String] {
        do {
            try body()
        } catch MigrateError.verificationFailed(let problems) {
            return problems
        } catch {
            Issue.record("unexpected error: \(error)")
        }
        return []
    }

    func appliedFixture(_ database: TestDatabase) throws -> MigrationFixture {
        let fixture = try MigrationFixture()
        try fixture.add("1_a", "CREATE TABLE a (id int);", down: "DROP TABLE a;")
        try fixture.add("3_c", "CREATE TABLE c (id int);", down: "DROP TABLE c;")
        try database.migrator(fixture).up()
        return fixture
    }

    @Test func anEditedFileStopsUpAndDown() throws {
        let database = try TestDatabase()
        let fixture = try appliedFixture(database)
        try fixture.add("4_d", "CREATE TABLE d (id int);")
        try fixture.write("1_a.up.sql", "CREATE TABLE a (id bigint);")
        #expect(problems { try database.migrator(fixture).up() }.first?.contains("changed on disk: 1_a.up.sql") == true)
        #expect(problems { try database.migrator(fixture).down() }.first?.contains("1_a.up.sql") == true)
        #expect(try !database.tableExists("d"))
    }

    @Test func aLineEndingChangeIsNotAnEdit() throws {
        let database = try TestDatabase()
        let fixture = try appliedFixture(database)
        try fixture.write("1_a.up.sql", "\u{FEFF}CREATE TABLE a (id int);".replacingOccurrences(of: "\n", with: "\r\n"))
        #expect(try database.migrator(fixture).up().isEmpty)
    }

    @Test func aMissingFileStopsUp() throws {
        let database = try TestDatabase()
        let fixture = try appliedFixture(database)
        try fixture.remove("1_a")
        #expect(problems { try database.migrator(fixture).up() }.first?.contains("missing from the directory: 1_a.up.sql") == true)
    }

    @Test func anOutOfOrderFileNeedsPermission() throws {
        let database = try TestDatabase()
        let fixture = try appliedFixture(database)
        try fixture.add("2_b", "CREATE TABLE b (id int);")
        #expect(problems { try database.migrator(fixture).up() }.first?.contains("--allow-out-of-order") == true)
        #expect(try database.migrator(fixture) { $0.allowOutOfOrder = true }.up().map(\.version) == [2])
        #expect(try database.tableExists("b"))
    }

    @Test func downRefusesAChangedDownFileUnlessForced() throws {
        let database = try TestDatabase()
        let fixture = try appliedFixture(database)
        try fixture.write("3_c.down.sql", "DROP TABLE c; -- changed")
        #expect {
            try database.migrator(fixture).down()
        } throws: { error in
            (error as? MigrateError)?.exitCode == .verificationFailure && "\(error)".contains("3_c.down.sql changed")
        }
        #expect(try database.tableExists("c"))
        #expect(try database.migrator(fixture) { $0.force = true }.down().map(\.version) == [3])
        #expect(try !database.tableExists("c"))
        #expect(try database.events().suffix(2) == ["3:forced", "3:rolled_back"])
    }

    @Test func downRefusesWithoutADownFile() throws {
        let database = try TestDatabase()
        let fixture = try MigrationFixture()
        try fixture.add("1_a", "CREATE TABLE a (id int);", down: nil)
        try database.migrator(fixture).up()
        #expect {
            try database.migrator(fixture).down()
        } throws: { error in
            "\(error)".contains("1_a.down.sql is missing")
        }
        #expect(try database.tableExists("a"))
    }
}

/// The runner brings its own bookkeeping up to date in a database an older runner made.
@Suite struct BookkeepingUpgradeTests {
    @Test func anOlderRunnersEventGuardGetsAPathWithPgTempLast() throws {
        let database = try TestDatabase()
        let fixture = try MigrationFixture(["1_a": "CREATE TABLE a (id int);"])
        try database.migrator(fixture).up()
        let connection = try database.connect()
        let config = "SELECT proconfig::text FROM pg_proc WHERE oid = 'migrate.refuse_event_change()'::regprocedure"
        #expect(try connection.scalar(config) == "{\"search_path=pg_catalog, pg_temp\"}", "a new runner pins pg_temp last")
        try connection.execute("ALTER FUNCTION migrate.refuse_event_change() SET search_path = pg_catalog")   // as runners before made it
        try fixture.add("2_b", "CREATE TABLE b (id int);")
        try database.migrator(fixture).up()
        #expect(try connection.scalar(config) == "{\"search_path=pg_catalog, pg_temp\"}", "the next run repins it")
        #expect(try connection.scalar("SELECT count(*) FROM migrate.history") == "2", "and keeps the history")
    }
}
