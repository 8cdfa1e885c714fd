import Foundation
import Testing

@testable import Freshet
import FreshetTestSupport

@Suite struct FailureTests {
    func failure(_ body: () throws -> Void) -> MigrationFailure? {
        do {
            try body()
        } catch MigrateError.migrationFailed(let failure) {
            return failure
        } catch {
            Issue.record("unexpected error: \(error)")
        }
        return nil
    }

    @Test func aSyntaxErrorNamesFileLineAndColumnAndLeavesNothing() throws {
        let database = try TestDatabase()
        let fixture = try MigrationFixture()
        try fixture.add("1_ok", "CREATE TABLE kept (id int);")
        try fixture.add("2_bad", "CREATE TABLE half (id int);\n\nINSERT INTO half VALUES (1);\nSELEC 1;\n")
        let failure = failure { try database.migrator(fixture).up() }
        #expect(failure?.file == "2_bad.up.sql")
        #expect(failure?.location == SourceLocation(line: 4, column: 1))
        #expect(failure?.error.sqlState == "42601")
        #expect(failure?.lineText == "SELEC 1;")
        #expect(failure?.description.contains("2_bad.up.sql:4:1: ERROR 42601") == true)
        #expect(try database.tableExists("kept"))
        #expect(try !database.tableExists("half"))
        #expect(try database.count("SELECT count(*) FROM migrate.history") == 1)
        #expect(try database.events() == ["1:applied", "2:failed"])
    }

    @Test func aStatementLeftOpenAtTheEndIsBlamedOnTheFile() throws {
        let database = try TestDatabase()
        let fixture = try MigrationFixture(["1_open": "CREATE TABLE a (id int);\nSELECT 1 +"])
        let failure = failure { try database.migrator(fixture).up() }
        #expect(failure?.file == "1_open.up.sql")
        #expect(failure?.error.sqlState == "42601")
        #expect(failure?.location?.line == 2)
        #expect(try !database.tableExists("a"))
    }

    @Test func aRuntimeErrorIsLocatedByReplay() throws {
        let database = try TestDatabase()
        let fixture = try MigrationFixture()
        try fixture.add("1_dup", "CREATE TABLE t (id int PRIMARY KEY);\nINSERT INTO t VALUES (1);\n\nINSERT INTO t VALUES (1);\n")
        let failure = failure { try database.migrator(fixture).up() }
        #expect(failure?.error.sqlState == "23505")
        #expect(failure?.location?.line == 4)
        #expect(failure?.statementIndex == 3)
        #expect(failure?.error.detail?.contains("already exists") == true)
        #expect(try !database.tableExists("t"))
    }

    @Test func aStatementThatNeedsNoTransactionIsRefusedBeforeAnythingRuns() throws {
        let database = try TestDatabase()
        let fixture = try MigrationFixture()
        try fixture.add("1_first", "CREATE TABLE first (id int);")
        try fixture.add("2_index", "CREATE TABLE t (a int);\nCREATE INDEX CONCURRENTLY t_a ON t (a);")
        #expect {
            try database.migrator(fixture).up()
        } throws: { error in
            "\(error)".contains("2_index.up.sql:2: CREATE INDEX CONCURRENTLY cannot run inside a transaction block")
        }
        #expect(try !database.tableExists("first"))
    }

    @Test func aNoTransactionFailureNeedsRepair() throws {
        let database = try TestDatabase()
        let fixture = try MigrationFixture()
        try fixture.add("1_table", "CREATE TABLE t (a int);")
        try fixture.add(
            "2_index",
            "-- migrate:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS t_a ON t (a);\nCREATE INDEX CONCURRENTLY t_b ON t (b);\n",
            down: "-- migrate:no-transaction\nDROP INDEX CONCURRENTLY IF EXISTS t_b;\nDROP INDEX CONCURRENTLY t_a;")
        try fixture.add("3_after", "CREATE TABLE after (id int);")
        let failure = failure { try database.migrator(fixture).up() }
        #expect(failure?.statementIndex == 2)
        #expect(failure?.location?.line == 3)
        #expect(failure?.rolledBack == false)
        #expect(try database.tableExists("t_a"))
        #expect(try !database.tableExists("after"))
        #expect(try database.scalar("SELECT state || ' ' || failed_statement FROM migrate.history WHERE version = 2") == "failed 2")

        #expect {
            try database.migrator(fixture).up()
        } throws: { error in
            "\(error)".contains("migrate repair 2")
        }

        try fixture.write("2_index.up.sql", "-- migrate:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS t_a ON t (a);\n")
        try database.migrator(fixture).repair(version: 2)
        #expect(try database.migrator(fixture).up().map(\.version) == [2, 3])
        #expect(try database.events() == ["1:applied", "2:failed", "2:repaired", "2:applied", "3:applied"])
        #expect(try database.migrator(fixture).down(.version(1)).map(\.version) == [3, 2])
        #expect(try !database.tableExists("t_a"))
    }

    @Test func repairCanMarkAFinishedByHandMigrationApplied() throws {
        let database = try TestDatabase()
        let fixture = try MigrationFixture()
        try fixture.add("1_vacuum", "-- migrate:no-transaction\nCREATE TABLE v (id int);\nSELECT missing_function();\n")
        _ = failure { try database.migrator(fixture).up() }
        try database.migrator(fixture).repair(version: 1, markApplied: true)
        #expect(try database.scalar("SELECT state FROM migrate.history WHERE version = 1") == "applied")
        #expect(try database.migrator(fixture).up().isEmpty)
        #expect(throws: MigrateError.self) { try database.migrator(fixture).repair(version: 1) }
    }

    @Test func repairAcceptsAChangedFile() throws {
        let database = try TestDatabase()
        let fixture = try MigrationFixture(["1_a": "CREATE TABLE a (id int);"])
        try database.migrator(fixture).up()
        try fixture.write("1_a.up.sql", "CREATE TABLE a (id int); -- reviewed")
        #expect(throws: MigrateError.self) { try database.migrator(fixture).up() }
        try database.migrator(fixture).repair(version: 1)
        #expect(try database.migrator(fixture).up().isEmpty)
        #expect(try database.events().last == "1:repaired")
    }
}
