import Foundation
import Testing

@testable import Freshet
import FreshetTestSupport

/// Runs the built `migrate` binary and checks what a user sees: output and exit codes.
@Suite struct EndToEndTests {
    @Test func upPrintsTheTargetWithoutSecretsThenOneLinePerMigrationWithNotices() throws {
        let database = try TestDatabase()
        let fixture = try MigrationFixture()
        try fixture.add("1_users", "CREATE TABLE users (id int);\nDO $$ BEGIN RAISE NOTICE 'hello from users'; END $$;")
        let url = database.url.replacingOccurrences(of: "postgres@", with: "postgres:s3cret@")
        let outcome = try MigrateBinary.run(["up", "--dir", fixture.path, "--url", url])
        #expect(outcome.status == 0, "\(outcome.output)")
        let lines = outcome.output.split(separator: "\n").map(String.init)
        #expect(lines.first == "target: host=\(database.cluster.rootDirectory) port=5432 database=\(database.name) user=postgres")
        #expect(!outcome.output.contains("s3cret"))
        #expect(lines.contains("1_users.up.sql: NOTICE: hello from users"))
        #expect(lines.contains { $0.range(of: #"^applied +1_users \([0-9.]+ ms\)$"#, options: .regularExpression) != nil })
        let again = try MigrateBinary.run(["up", "--dir", fixture.path, "--url", url, "--quiet"])
        #expect(again.status == 0)
        #expect(again.output.isEmpty)
    }

    @Test func environmentSuppliesTheDatabaseAndDirectory() throws {
        let database = try TestDatabase()
        let fixture = try MigrationFixture(["1_env": "CREATE TABLE from_env (id int);"])
        let outcome = try MigrateBinary.run(["up"], environment: ["DATABASE_URL": database.url, "MIGRATIONS_DIR": fixture.path])
        #expect(outcome.status == 0, "\(outcome.output)")
        #expect(try database.tableExists("from_env"))
    }

    @Test func statusExitCodeAndJSON() throws {
        let database = try TestDatabase()
        let fixture = try MigrationFixture(["1_a": "SELECT 1;", "2_b": "SELECT 2;"])
        let pending = try MigrateBinary.run(["status", "--exit-code", "--dir", fixture.path, "--url", database.url])
        #expect(pending.status == 3)
        #expect(pending.output.contains("2 pending"))
        #expect(try MigrateBinary.run(["up", "--dir", fixture.path, "--url", database.url]).status == 0)
        let clean = try MigrateBinary.run(["status", "--exit-code", "--dir", fixture.path, "--url", database.url])
        #expect(clean.status == 0, "\(clean.output)")
        try fixture.remove("1_a")
        let json = try MigrateBinary.run(["status", "--json", "--dir", fixture.path, "--url", database.url])
        let document = try JSONDecoder().decode(StatusReport.Document.self, from: Data(json.output.utf8))
        #expect(document.migrations.map(\.state) == [.missing, .applied])
        #expect(document.target == "host=\(database.cluster.rootDirectory) port=5432 database=\(database.name) user=postgres")
        #expect(document.summary.counts == ["missing": 1, "applied": 1])
        #expect(document.summary.currentVersion == 2 && document.summary.latestVersion == 2)
        #expect(document.summary.needsAttention)
        let appliedAt = try #require(document.migrations.last?.appliedAt)
        #expect(ISO8601DateFormatter.withFractionalSeconds.date(from: appliedAt) != nil, "\(appliedAt) is not ISO 8601")
    }

    @Test func usageErrorsExitTwo() throws {
        #expect(try MigrateBinary.run(["down", "--to", "1", "--steps", "2"]).status == 2)
        #expect(try MigrateBinary.run(["up", "--no-such-flag"]).status == 2)
        #expect(try MigrateBinary.run(["up", "--lock-timeout", "5 parsecs", "--url", "host=/nonexistent"]).status == 2)
        #expect(try MigrateBinary.run(["--help"]).status == 0)
    }

    @Test func aFailingMigrationExitsOneAndNamesTheLine() throws {
        let database = try TestDatabase()
        let fixture = try MigrationFixture(["1_bad": "CREATE TABLE ok (id int);\nSELECT * FROM no_such_table;"])
        let outcome = try MigrateBinary.run(["up", "--dir", fixture.path, "--url", database.url])
        #expect(outcome.status == 1)
        #expect(outcome.output.contains("error: 1_bad.up.sql:2:15: ERROR 42P01: relation \"no_such_table\" does not exist"))
        #expect(outcome.output.contains("2 | SELECT * FROM no_such_table;"))
    }

    @Test func aMalformedFileNameIsNamed() throws {
        let fixture = try MigrationFixture(["1_a": "SELECT 1;"])
        try fixture.write("v2_oops.up.sql", "SELECT 1;")
        let outcome = try MigrateBinary.run(["verify", "--offline", "--dir", fixture.path])
        #expect(outcome.status == 1)
        #expect(outcome.output.contains("v2_oops.up.sql: malformed migration file name"))
    }

    @Test func newSumAndOfflineVerify() throws {
        let fixture = try MigrationFixture(["0007_existing": "SELECT 1;"])
        let missingSum = try MigrateBinary.run(["verify", "--offline", "--dir", fixture.path])
        #expect(missingSum.status == 3)
        let created = try MigrateBinary.run(["new", "add users", "--dir", fixture.path])
        #expect(created.status == 0, "\(created.output)")
        #expect(FileManager.default.fileExists(atPath: "\(fixture.path)/0008_add_users.up.sql"))
        #expect(FileManager.default.fileExists(atPath: "\(fixture.path)/0008_add_users.down.sql"))
        #expect(try MigrateBinary.run(["verify", "--offline", "--dir", fixture.path]).status == 0)
        try fixture.write("0007_existing.up.sql", "SELECT 2;")
        let edited = try MigrateBinary.run(["verify", "--offline", "--dir", fixture.path])
        #expect(edited.status == 3)
        #expect(edited.output.contains("0007_existing.up.sql was edited"))
        #expect(try MigrateBinary.run(["sum", "--dir", fixture.path]).status == 0)
        #expect(try MigrateBinary.run(["verify", "--offline", "--dir", fixture.path]).status == 0)
    }

    @Test func waitSucceedsOrTimesOut() throws {
        let database = try TestDatabase()
        #expect(try MigrateBinary.run(["wait", "--url", database.url, "--timeout", "5s"]).status == 0)
        let missing = try MigrateBinary.run(["wait", "--url", "host=/nonexistent-socket-dir", "--timeout", "200ms"])
        #expect(missing.status == 1)
        #expect(missing.output.contains("did not accept connections within 0.2 s"))
    }

    @Test func migrateTestCountsPgTAPResultsAndCatchesAnInexactDown() throws {
        let cluster = try TestCluster.shared()
        let fixture = try MigrationFixture()
        try fixture.add("1_a", "CREATE TABLE a (id int);", down: "DROP TABLE a;")
        try fixture.add("2_b", "CREATE TABLE b (id int);\nCREATE INDEX b_id ON b (id);", down: "DROP INDEX b_id;")
        let tests = try MigrationFixture()
        try tests.write("a.sql", "SELECT plan(2);\nSELECT has_table('a');\nSELECT ok(false, 'meant to fail');\nSELECT * FROM finish();")
        let outcome = try MigrateBinary.run([
            "test", "--dir", fixture.path, "--tests", tests.path, "--url", cluster.url(database: "postgres"),
        ])
        #expect(outcome.status == 1)
        #expect(outcome.output.contains("ok 1 - Table a should exist"))
        #expect(outcome.output.contains("not ok 2 - meant to fail"))
        #expect(outcome.output.contains("not ok 2 - every down leaves the schema of an empty database"))
        #expect(outcome.output.contains("CREATE TABLE public.b"))
        #expect(outcome.output.contains("not ok 3 - every up again"))
        #expect(outcome.output.hasSuffix("2 passed, 3 failed\n"))
        let leftovers = try cluster.connect(database: "postgres")
            .scalar("SELECT count(*) FROM pg_database WHERE datname LIKE 'freshet\\_%'")
        #expect(leftovers == "0")
    }

    @Test func aKilledTestRunRemovesItsDisposableCluster() throws {
        let temporary = NSTemporaryDirectory() + "freshet-e2e-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: temporary, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: temporary) }
        let fixture = try MigrationFixture(["1_a": "SELECT 1;"])
        let tests = try MigrationFixture()
        try tests.write("slow.sql", "SELECT plan(1);\nSELECT pg_sleep(60);\nSELECT pass('slept');")
        let run = try MigrateBinary.start(
            ["test", "--dir", fixture.path, "--tests", tests.path], environment: ["TMPDIR": temporary])
        func clusterDirectories() -> [String] {
            ((try? FileManager.default.contentsOfDirectory(atPath: temporary)) ?? []).filter { $0.hasPrefix("freshet-pg-") }
        }
        #expect(eventually(timeout: 30) {
            clusterDirectories().contains { FileManager.default.fileExists(atPath: "\(temporary)/\($0)/data/postmaster.pid") }
        })
        usleep(500_000)
        kill(run.pid, SIGKILL)
        _ = run.wait()
        #expect(eventually(timeout: 15) { clusterDirectories().isEmpty })
    }
}

extension ISO8601DateFormatter {
    static var withFractionalSeconds: ISO8601DateFormatter {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter
    }
}

/// A connection that fails is an exit code 1 and libpq's message, never a crash.
@Suite struct ConnectionFailureTests {
    @Test(arguments: [
        ("postgres://postgres@127.0.0.1:5999/freshet", "Connection refused"),
        ("notaurl://x", "missing \"=\""),
        ("host=/nonexistent-freshet-socket dbname=x", "No such file or directory"),
        ("postgres://postgres@no-such-host.invalid/x", "could not translate host name \"no-such-host.invalid\""),
    ])
    func aFailedConnectionExitsOneWithLibpqsMessage(url: String, says: String) throws {
        let outcome = try MigrateBinary.run(["status", "--url", url])
        #expect(outcome.status == 1, "\(outcome.output)")
        #expect(outcome.output.contains(says), "\(outcome.output)")
        #expect(outcome.output.contains("Check --url, DATABASE_URL or the PG* variables"))
    }

    /// libpq loads on first use, so a command that never connects runs without it, and one that
    /// does says what is missing.
    @Test func aMissingLibpqStopsOnlyTheCommandsThatConnect() throws {
        let missing = ["FRESHET_LIBPQ": "/nonexistent-freshet/libpq.so.5"]
        let version = try MigrateBinary.run(["--version"], environment: missing)
        #expect(version.status == 0 && version.output.contains("migrate (Freshet)"), "\(version.output)")
        let status = try MigrateBinary.run(["status", "--url", "host=/nonexistent-freshet-socket dbname=x"], environment: missing)
        #expect(status.status == 1, "\(status.output)")
        #expect(status.output.contains("cannot load libpq: /nonexistent-freshet/libpq.so.5"), "\(status.output)")
        #expect(status.output.contains("apt-get install libpq5") && status.output.contains("FRESHET_LIBPQ"))
        #expect(status.output.split(separator: "\n").count == 1, "\(status.output)")
    }

    @Test func aMissingDatabaseExitsOne() throws {
        let cluster = try TestCluster.shared()
        let outcome = try MigrateBinary.run(["up", "--url", cluster.conninfo(database: "freshet_no_such_database")])
        #expect(outcome.status == 1, "\(outcome.output)")
        #expect(outcome.output.contains("database \"freshet_no_such_database\" does not exist"), "\(outcome.output)")
    }
}

extension ConnectionFailureTests {
    @Test func aWrongPasswordExitsOneWithTheServersMessage() throws {
        let cluster = try TestCluster.shared()
        let admin = try cluster.connect(database: "postgres")
        let hba = try #require(try admin.scalar("SHOW hba_file"))
        let rules = try String(contentsOfFile: hba, encoding: .utf8)
        if !rules.hasPrefix("local all freshet_password_user") {
            // First match wins: this one role must show a password over the socket; everyone else stays trusted.
            try ("local all freshet_password_user scram-sha-256\n" + rules).write(toFile: hba, atomically: false, encoding: .utf8)
            try admin.execute("SELECT pg_reload_conf()")
        }
        try admin.execute("""
            DO $$ BEGIN CREATE ROLE freshet_password_user LOGIN PASSWORD 'right'; EXCEPTION WHEN duplicate_object THEN NULL; END $$
            """)
        let url = "postgres://freshet_password_user:wrong@/postgres?host=\(cluster.rootDirectory)"
        let outcome = try MigrateBinary.run(["status", "--url", url])
        #expect(outcome.status == 1, "\(outcome.output)")
        #expect(outcome.output.contains("password authentication failed for user \"freshet_password_user\""), "\(outcome.output)")
        #expect(!outcome.output.contains("wrong"), "the password is not printed")
        let right = try MigrateBinary.run(["status", "--url", url.replacingOccurrences(of: ":wrong@", with: ":right@")])
        #expect(right.status == 0, "the right password works: \(right.output)")
    }

    @Test func aServerThatShutsDownMidRunEndsTheRunWithExitOneAndTheNextRunFinishesIt() throws {
        let cluster = try PostgresCluster.disposable()
        defer { cluster.stop() }
        let fixture = try MigrationFixture(["1_slow": "CREATE TABLE slow (id int);\nSELECT pg_sleep(30);"])
        let url = cluster.url(database: "freshet")
        let runner = try MigrateBinary.start(["up", "--dir", fixture.path, "--url", url])
        let admin = try cluster.connect(database: "freshet")
        #expect(try eventually(timeout: 20) {
            try admin.scalar("SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(30)%' AND application_name = 'migrate'") == "1"
        })
        try ProcessRunner.check(
            cluster.installation.program("pg_ctl"), ["-D", cluster.dataDirectory, "-m", "fast", "-w", "stop"], asServerUser: true)
        let outcome = runner.wait()
        #expect(outcome.status == 1, "\(outcome.output)")
        #expect(outcome.output.contains("terminating connection due to administrator command"), "\(outcome.output)")
        #expect(outcome.output.contains("lost the connection to host=\(cluster.rootDirectory)"), "\(outcome.output)")
        #expect(outcome.output.contains("while running 1_slow.up.sql"), "\(outcome.output)")
        #expect(!outcome.output.contains("Fatal error") && !outcome.output.contains("Sanitizer"), "\(outcome.output)")

        try ProcessRunner.check(
            cluster.installation.program("pg_ctl"), ["-D", cluster.dataDirectory, "-l", cluster.logFile, "-w", "start"],
            asServerUser: true)
        let fast = try MigrationFixture(["1_slow": "CREATE TABLE slow (id int);"])
        let rerun = try MigrateBinary.run(["up", "--dir", fast.path, "--url", url])
        #expect(rerun.status == 0, "nothing of the interrupted run was kept, so the next run applies it: \(rerun.output)")
        let check = try cluster.connect(database: "freshet")
        #expect(try check.scalar("SELECT count(*) FROM migrate.history WHERE state = 'applied'") == "1")
    }
}

/// What the command line says in the cases users met: a version, bad numbers, targets above the
/// current version, and repairing what was never applied.
@Suite struct CommandLineTests {
    @Test func versionPrintsTheRunnersVersion() throws {
        let outcome = try MigrateBinary.run(["--version"])
        #expect(outcome.status == 0)
        #expect(outcome.output.hasPrefix("migrate (Freshet) "))
    }

    @Test func aNegativeStepCountIsCalledThat() throws {
        let outcome = try MigrateBinary.run(["down", "--steps", "-1", "--url", "host=/nonexistent"])
        #expect(outcome.status == 2)
        #expect(outcome.output.contains("--steps must be at least 1"), "\(outcome.output)")
    }

    @Test func aTargetAboveTheCurrentVersionAndARepairOfAPendingOneSayWhatIsTrue() throws {
        let database = try TestDatabase()
        let fixture = try MigrationFixture(["1_a": "CREATE TABLE a (id int);", "2_b": "CREATE TABLE b (id int);"])
        #expect(try MigrateBinary.run(["up", "--dir", fixture.path, "--url", database.url, "--to", "1"]).status == 0)
        let above = try MigrateBinary.run(["down", "--dir", fixture.path, "--url", database.url, "--to", "99"])
        #expect(above.status == 0)
        #expect(above.output.contains("the target 99 is above the current version 1: nothing to roll back"), "\(above.output)")
        let repair = try MigrateBinary.run(["repair", "2", "--dir", fixture.path, "--url", database.url])
        #expect(repair.status == 1)
        #expect(repair.output.contains("migration 2 is pending: it was never applied, so there is nothing to repair"), "\(repair.output)")
    }
}

/// `verify` and `status` name every drift at once, a changed down file and a missing sum included.
@Suite struct DriftReportTests {
    @Test func aChangedDownFileShowsInStatusAndFailsVerifyBesideAMissingSum() throws {
        let database = try TestDatabase()
        let fixture = try MigrationFixture()
        try fixture.add("1_a", "CREATE TABLE a (id int);", down: "DROP TABLE a;")
        try fixture.add("2_b", "CREATE TABLE b (id int);", down: "DROP TABLE b;")
        #expect(try MigrateBinary.run(["up", "--dir", fixture.path, "--url", database.url]).status == 0)
        try fixture.write("2_b.down.sql", "DROP TABLE b; -- edited after it was applied")

        let status = try MigrateBinary.run(["status", "--dir", fixture.path, "--url", database.url])
        #expect(status.output.contains("down file changed since applied"), "\(status.output)")
        let json = try MigrateBinary.run(["status", "--json", "--dir", fixture.path, "--url", database.url])
        #expect(json.output.contains("\"downChanged\" : true"), "\(json.output)")
        let exitCode = try MigrateBinary.run(["status", "--exit-code", "--dir", fixture.path, "--url", database.url])
        #expect(exitCode.status == 3, "a changed down file needs attention")

        let verify = try MigrateBinary.run(["verify", "--dir", fixture.path, "--url", database.url])
        #expect(verify.status == 3, "\(verify.output)")
        #expect(verify.output.contains("migrate.sum is missing"), "the missing sum is one finding: \(verify.output)")
        #expect(verify.output.contains("down files changed since their migration was applied: 2_b.down.sql"), "\(verify.output)")
        let offline = try MigrateBinary.run(["verify", "--offline", "--dir", fixture.path])
        #expect(offline.status == 3)
        #expect(offline.output.contains("migrate.sum is missing"))
    }
}
