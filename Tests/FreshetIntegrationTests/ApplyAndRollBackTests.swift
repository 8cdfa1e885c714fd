import Foundation
import Testing

@testable import Freshet
import FreshetTestSupport

@Suite struct ApplyAndRollBackTests {
    func fixture() throws -> MigrationFixture {
        let fixture = try MigrationFixture()
        try fixture.add("1_users", "CREATE TABLE users (id int PRIMARY KEY);", down: "DROP TABLE users;")
        try fixture.add("2_posts", "CREATE TABLE posts (id int);\nDO $$ BEGIN RAISE NOTICE 'posts ready'; END $$;", down: "DROP TABLE posts;")
        try fixture.add("10_tags", "CREATE TABLE tags (id int);", down: "DROP TABLE tags;")
        return fixture
    }

    @Test func appliesAndRollsBackWithHistoryAndEvents() throws {
        let database = try TestDatabase()
        let fixture = try fixture()
        let applied = try database.migrator(fixture).up()
        #expect(applied.map(\.version) == [1, 2, 10])
        #expect(try database.tableExists("tags"))
        #expect(database.output.text.contains("2_posts.up.sql: NOTICE: posts ready"))
        #expect(database.output.lines.contains { $0.hasPrefix("applied") && $0.contains("10_tags (") && $0.hasSuffix(" ms)") })
        #expect(try database.count("SELECT count(*) FROM migrate.history WHERE state = 'applied' AND duration IS NOT NULL") == 3)
        let row = try database.connect().query(
            "SELECT up_checksum, down_checksum, applied_by FROM migrate.history WHERE version = 1").rows[0]
        #expect(row[0] == (try fixture.directory().migration(version: 1)!.up.checksum.description))
        #expect(row[1] == (try fixture.directory().migration(version: 1)!.down!.checksum.description))
        #expect(row[2] == "postgres")

        #expect(try database.migrator(fixture).up().isEmpty)

        #expect(try database.migrator(fixture).down().map(\.version) == [10])
        #expect(try !database.tableExists("tags"))
        #expect(try database.migrator(fixture).down(.steps(5)).map(\.version) == [2, 1])
        #expect(try !database.tableExists("users"))
        #expect(try database.events() == ["1:applied", "2:applied", "10:applied", "10:rolled_back", "2:rolled_back", "1:rolled_back"])
    }

    @Test func upAndDownHonourTargets() throws {
        let database = try TestDatabase()
        let fixture = try fixture()
        #expect(try database.migrator(fixture).up(to: 2).map(\.version) == [1, 2])
        #expect(try database.migrator(fixture).up(to: 2).isEmpty)
        #expect(try database.migrator(fixture).up().map(\.version) == [10])
        #expect(try database.migrator(fixture).down(.version(1)).map(\.version) == [10, 2])
        #expect(try database.tableExists("users"))
        #expect(try database.migrator(fixture).down(.version(0)).map(\.version) == [1])
    }

    @Test func dryRunChangesNothing() throws {
        let database = try TestDatabase()
        let fixture = try fixture()
        let plan = try database.migrator(fixture) { $0.dryRun = true }.up()
        #expect(plan.count == 3)
        #expect(try !database.tableExists("users"))
        #expect(try !database.tableExists("migrate.history"))
        #expect(database.output.lines.contains("would apply 1_users.up.sql"))
    }

    @Test func singleTransactionIsAllOrNothing() throws {
        let database = try TestDatabase()
        let fixture = try fixture()
        try fixture.add("11_broken", "CREATE TABLE broken (id int);\nSELECT 1 / 0;")
        #expect(throws: MigrateError.self) { try database.migrator(fixture) { $0.singleTransaction = true }.up() }
        #expect(try !database.tableExists("users"))
        #expect(try database.count("SELECT count(*) FROM migrate.history") == 0)
        try fixture.remove("11_broken")
        #expect(try database.migrator(fixture) { $0.singleTransaction = true }.up().count == 3)
        #expect(try database.tableExists("tags"))
    }

    @Test func clonesAMigratedTemplateIntoFreshDatabases() throws {
        let template = try TestDatabase()
        try template.migrator(try fixture()).up()
        let clone = try TestDatabase(template: template.name)
        #expect(try clone.tableExists("tags"))
        #expect(try clone.count("SELECT count(*) FROM migrate.history") == 3)
    }

    @Test func eventsAreAppendOnly() throws {
        let database = try TestDatabase()
        try database.migrator(try fixture()).up()
        let connection = try database.connect()
        for statement in ["UPDATE migrate.events SET detail = 'x'", "DELETE FROM migrate.events", "TRUNCATE migrate.events"] {
            #expect(throws: PostgresError.self) { try connection.execute(statement) }
        }
        #expect(try database.count("SELECT count(*) FROM migrate.events") == 3)
    }
}
