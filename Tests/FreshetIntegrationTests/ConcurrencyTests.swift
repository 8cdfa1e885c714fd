import Foundation
import Testing

@testable import Freshet
import FreshetTestSupport

@Suite struct ConcurrencyTests {
    @Test func eightConcurrentRunnersApplyEachMigrationOnce() throws {
        let database = try TestDatabase()
        let fixture = try MigrationFixture()
        try database.connect().execute("CREATE TABLE runs (version int)")
        for version in 1...6 {
            try fixture.add("\(version)_step", "INSERT INTO runs VALUES (\(version));\nSELECT pg_sleep(0.05);")
        }
        let runners = try (0..<8).map { _ in
            try MigrateBinary.start(["up", "--dir", fixture.path, "--url", database.url, "--lock-wait", "60s"])
        }
        let outcomes = runners.map { $0.wait() }
        for outcome in outcomes {
            #expect(outcome.status == 0, "\(outcome.output)")
        }
        #expect(try database.count("SELECT count(*) FROM runs") == 6)
        #expect(try database.count("SELECT count(DISTINCT version) FROM runs") == 6)
        #expect(try database.count("SELECT count(*) FROM migrate.events WHERE action = 'applied'") == 6)
        let applying = outcomes.filter { $0.output.contains("applied") && !$0.output.contains("nothing to apply") }
        #expect(applying.count >= 1)
        #expect(outcomes.filter { $0.output.contains("nothing to apply") }.count + applying.count == 8)
    }

    @Test func aRunnerGivesUpWaitingForTheLockAndNamesTheHolder() throws {
        let database = try TestDatabase()
        let fixture = try MigrationFixture(["1_a": "CREATE TABLE a (id int);"])
        let holder = try database.connect()
        try holder.execute("SET application_name = 'lock-holder'")
        try holder.query("SELECT pg_advisory_lock(\(HistoryStore.lockKey.classID), \(HistoryStore.lockKey.objectID))")
        let outcome = try MigrateBinary.run(["up", "--dir", fixture.path, "--url", database.url, "--lock-wait", "300ms"])
        #expect(outcome.status == 1)
        #expect(outcome.output.contains("another runner held the migration lock for 0.3 s"))
        #expect(outcome.output.contains("lock-holder"))
        #expect(try !database.tableExists("a"))
    }

    @Test func aKilledRunnerLeavesNothingHalfAppliedAndARerunCompletes() throws {
        let database = try TestDatabase()
        let fixture = try MigrationFixture()
        try fixture.add("1_slow", "CREATE TABLE slow (id int);\nINSERT INTO slow VALUES (1);\nSELECT pg_sleep(3);\nCREATE TABLE after_sleep (id int);")
        let runner = try MigrateBinary.start(["up", "--dir", fixture.path, "--url", database.url])
        #expect(try eventually {
            try database.count("SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(3)%' AND application_name = 'migrate'") == 1
        })
        kill(runner.pid, SIGKILL)
        _ = runner.wait()
        #expect(try eventually {
            try database.count("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'migrate'") == 0
        })
        #expect(try !database.tableExists("slow"))
        #expect(try database.count("SELECT count(*) FROM migrate.history") == 0)

        let rerun = try MigrateBinary.run(["up", "--dir", fixture.path, "--url", database.url])
        #expect(rerun.status == 0, "\(rerun.output)")
        #expect(try database.count("SELECT count(*) FROM slow") == 1)
        #expect(try database.tableExists("after_sleep"))
    }

    @Test func aLockTimeoutIsRetriedThenNamesTheBlocker() throws {
        let database = try TestDatabase()
        let fixture = try MigrationFixture(["1_table": "CREATE TABLE t (id int);"])
        try database.migrator(fixture).up()
        try fixture.add("2_alter", "ALTER TABLE t ADD COLUMN note text;")
        let blocker = try database.connect()
        try blocker.execute("SET application_name = 'blocker'; BEGIN; SELECT * FROM t;")
        let migrator = try database.migrator(fixture) {
            $0.lockTimeout = 0.1
            $0.lockRetries = 2
            $0.retryBackoff = 0.05
        }
        do {
            try migrator.up()
            Issue.record("the migration should time out")
        } catch MigrateError.migrationFailed(let failure) {
            #expect(failure.error.sqlState == "55P03")
            #expect(failure.file == "2_alter.up.sql")
            #expect(failure.note?.contains("pid \(blocker.backendPID)") == true)
            #expect(failure.note?.contains("blocker") == true)
            #expect(failure.note?.contains("AccessShareLock on t") == true)
        }
        #expect(database.output.lines.filter { $0.contains("lock timeout, attempt") }.count == 2)
        #expect(try database.count("SELECT count(*) FROM migrate.history") == 1)

        try blocker.execute("COMMIT")
        #expect(try database.migrator(fixture).up().map(\.version) == [2])
    }

    @Test func aRetryAfterTheBlockerLeavesSucceeds() throws {
        let database = try TestDatabase()
        let fixture = try MigrationFixture(["1_table": "CREATE TABLE t (id int);"])
        try database.migrator(fixture).up()
        try fixture.add("2_alter", "ALTER TABLE t ADD COLUMN note text;")
        let blocker = try database.connect()
        try blocker.execute("BEGIN; SELECT * FROM t;")
        nonisolated(unsafe) let releasing = blocker
        let release = Thread {
            usleep(300_000)
            _ = try? releasing.execute("COMMIT")
        }
        release.start()
        let applied = try database.migrator(fixture) {
            $0.lockTimeout = 0.1
            $0.lockRetries = 5
            $0.retryBackoff = 0.1
        }.up()
        #expect(applied.map(\.version) == [2])
    }
}
