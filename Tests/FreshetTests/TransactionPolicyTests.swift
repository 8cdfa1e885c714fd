import Testing

@testable import Freshet

@Suite struct TransactionPolicyTests {
    func script(_ sql: String, name: String = "0001_x.up.sql") -> MigrationScript {
        MigrationScript(version: 1, name: "x", direction: .up, path: "/m/\(name)", sql: sql)
    }

    @Test func recognisesTheDirectiveOnTheFirstLineOnly() {
        #expect(script("-- migrate:no-transaction\nVACUUM;").isNonTransactional)
        #expect(script("  --   migrate:no-transaction  \nVACUUM;").isNonTransactional)
        #expect(!script("SELECT 1;\n-- migrate:no-transaction\n").isNonTransactional)
    }

    @Test func refusesUnknownDirectives() {
        #expect(throws: MigrateError.self) { try TransactionPolicy.check(script("-- migrate:notransaction\nSELECT 1;")) }
    }

    @Test(arguments: [
        ("CREATE INDEX CONCURRENTLY i ON t (a);", "CREATE INDEX CONCURRENTLY"),
        ("create unique index concurrently i on t (a);", "CREATE INDEX CONCURRENTLY"),
        ("DROP INDEX CONCURRENTLY i;", "DROP INDEX CONCURRENTLY"),
        ("VACUUM (ANALYZE) t;", "VACUUM"),
        ("ALTER SYSTEM SET work_mem = '8MB';", "ALTER SYSTEM"),
        ("REINDEX TABLE CONCURRENTLY t;", "REINDEX ... CONCURRENTLY"),
        ("CREATE DATABASE other;", "CREATE DATABASE"),
        ("ALTER TABLE p DETACH PARTITION c CONCURRENTLY;", "DETACH PARTITION"),
    ])
    func refusesStatementsThatCannotRunInATransaction(statement: String, named: String) {
        do {
            try TransactionPolicy.check(script("SELECT 1;\n\n\(statement)\n"))
            Issue.record("\(statement) should be refused")
        } catch let MigrateError.needsNoTransaction(file, line, what) {
            #expect(file == "0001_x.up.sql")
            #expect(line == 3)
            #expect(what.contains(named))
            #expect(MigrateError.needsNoTransaction(file: file, line: line, statement: what).description
                .contains("-- migrate:no-transaction"))
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test func allowsThemUnderTheDirective() throws {
        try TransactionPolicy.check(script("-- migrate:no-transaction\nCREATE INDEX CONCURRENTLY i ON t (a);"))
    }

    @Test func refusesTransactionControlThatCannotBalance() {
        #expect(throws: MigrateError.self) { try TransactionPolicy.check(script("SELECT 1;\nROLLBACK;")) }
        #expect(throws: MigrateError.self) { try TransactionPolicy.check(script("BEGIN;\nSELECT 1;")) }
        #expect(throws: MigrateError.self) { try TransactionPolicy.check(script("PREPARE TRANSACTION 'x';")) }
        #expect(throws: MigrateError.self) { try TransactionPolicy.check(script("BEGIN;\nVACUUM;\nCOMMIT;")) }
    }

    @Test func aSingleWrapperBecomesTheMigrationsTransactionKeepingPositions() throws {
        let plan = try TransactionPolicy.plan(script("-- wrapped\nbegin transaction;\nSELECT 'é';\nEND;\n"))
        #expect(plan.mode == .ownWrapper(beginLine: 2, commitLine: 4))
        #expect(plan.sql == "-- wrapped\nbegin transaction;\nSELECT 'é';\n   ;\n")
        #expect(plan.sqlInsideRunnerTransaction == "-- wrapped\n                 ;\nSELECT 'é';\n   ;\n")
        #expect(plan.sql.unicodeScalars.count == "-- wrapped\nbegin transaction;\nSELECT 'é';\nEND;\n".unicodeScalars.count)
    }

    @Test func severalBlocksOrStatementsOutsideRunStatementByStatement() throws {
        #expect(try TransactionPolicy.plan(script("BEGIN; SELECT 1; COMMIT; BEGIN; SELECT 2; COMMIT;")).mode
            == .noTransaction(.ownTransactions(blocks: 2, outside: 0)))
        #expect(try TransactionPolicy.plan(script("SELECT 0; BEGIN; SELECT 1; COMMIT;")).mode
            == .noTransaction(.ownTransactions(blocks: 1, outside: 1)))
        #expect(try TransactionPolicy.plan(script("BEGIN; SELECT 1; ROLLBACK;")).mode
            == .noTransaction(.ownTransactions(blocks: 1, outside: 0)))
        #expect(try TransactionPolicy.plan(script("DROP INDEX CONCURRENTLY a; DROP INDEX CONCURRENTLY b;")).mode
            == .noTransaction(.onlyNonTransactional("DROP INDEX CONCURRENTLY")))
        #expect(try TransactionPolicy.plan(script("SELECT 1;")).mode == .transaction)
    }

    @Test func allowsLookalikes() throws {
        try TransactionPolicy.check(script("""
            DO $$ BEGIN PERFORM 1; END $$;
            SAVEPOINT s; ROLLBACK TO SAVEPOINT s;
            CREATE INDEX i ON t (a);
            SELECT 'VACUUM';
            COMMENT ON TABLE t IS 'CREATE INDEX CONCURRENTLY';
            """))
    }
}
