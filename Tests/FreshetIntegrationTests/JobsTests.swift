import Foundation
import Testing

@testable import Freshet

@Suite struct JobsTests {
    static let orderJobs: Set<String> = [
        "cleanup-old-queue-entries|0 3 * * *", "hourly-price-snapshot|0 * * * *", "process-pending-orders|* * * * *",
        "prune-job-history|30 3 * * *", "refresh-issuer-stats-cache|*/5 * * * *",
    ]
    static let refreshJobs: Set<String> = [
        "refresh-stale-sweep|*/5 * * * *", "refresh-scheduled-refreshes|* * * * *", "refresh-processor-loop|* * * * *",
        "refresh-queue-maintenance|*/10 * * * *", "refresh-analytics|*/5 * * * *", "refresh-health-check|*/5 * * * *",
    ]
    static let ledgerJobs: Set<String> = ["ledger-analytics|* * * * *"]
    static let feedJobs: Set<String> = ["feed-prune|17 3 * * *"]
    static let seedJobs = orderJobs.union(refreshJobs).union(ledgerJobs).union(feedJobs)

    /// 20 issuers, and 300 users with cash and holdings: the book the order tests trade on.
    static let orderBook = """
        INSERT INTO jobs.issuers (ticker, name, current_price, shares_outstanding)
        SELECT 'T' || n, 'Issuer ' || n, 1 + n * 0.37, 1000000 FROM generate_series(1, 20) n;
        INSERT INTO jobs.balances (user_id, cash) SELECT md5('user' || n)::uuid, 5000 FROM generate_series(1, 300) n;
        INSERT INTO jobs.holdings (user_id, ticker, shares) SELECT md5('user' || n)::uuid, 'T' || (1 + n % 20), 100 FROM generate_series(1, 300) n;
        """

    /// The book's whole value, cash plus holdings at current prices: trading conserves it.
    static let bookValue = """
        SELECT (SELECT sum(cash) FROM jobs.balances)
             + (SELECT sum(h.shares * i.current_price) FROM jobs.holdings h JOIN jobs.issuers i USING (ticker))
        """

    /// pg_cron lives only in the cluster's cron database, so this test owns that database.
    @Test func theJobsRunInPgCronWithTheSeedsCadencesAndLeaveWithTheirMigrations() throws {
        let cluster = try TestCluster.shared()
        #expect(cluster.hasPgCron)
        let output = LineCollector()
        func migrator() throws -> Migrator {
            // The seeds' settings and queues go with their modules here.
            var options = MigratorOptions()
            options.allowDataLoss = true
            return Migrator(
                connection: try cluster.connect(database: cluster.cronDatabase),
                directory: try MigrationDirectory(path: BundleDatabase.migrationsPath), reporter: output.reporter,
                options: options)
        }
        try migrator().up()
        let connection = try cluster.connect(database: cluster.cronDatabase)
        func cronJobs() throws -> Set<String> {
            Set(try connection.query("SELECT jobname || '|' || schedule FROM cron.job").rows.map { $0[0]! })
        }
        #expect(try cronJobs() == Self.seedJobs)
        #expect(try connection.scalar("SELECT count(*) FROM cron.job WHERE command <> format('SELECT jobs.run_job(%L)', jobname)") == "0")
        try connection.execute("SELECT jobs.schedule_job('hourly-price-snapshot', '0 * * * *', 'SELECT jobs.snapshot_hourly_prices()')")
        #expect(try cronJobs() == Self.seedJobs)
        #expect(try connection.scalar("SELECT jobs.apply_schedules()") == "13")
        #expect(try cronJobs() == Self.seedJobs)
        #expect(try connection.scalar(
            "SELECT count(*) FROM jsonb_array_elements(refresh.health_check() -> 'jobs') j WHERE (j ->> 'scheduled')::boolean") == "6",
            "health_check() sees the refresh jobs in pg_cron")

        // pg_cron really runs them (its smallest cadence is a minute): a probe job, and a seed job
        // that runs every minute, each seen succeeding in cron.job_run_details and in jobs.runs.
        try connection.execute("SELECT jobs.schedule_job('tick-probe', '* * * * *', 'SELECT 1')")
        func succeeded(_ job: String) throws -> Bool {
            try connection.scalar(
                """
                SELECT EXISTS (SELECT FROM cron.job_run_details d JOIN cron.job j USING (jobid)
                               WHERE j.jobname = $1 AND d.status = 'succeeded')
                   AND EXISTS (SELECT FROM jobs.runs r WHERE r.job_name = $1 AND r.outcome = 'succeeded')
                """, [job]) == "t"
        }
        let ticked = try eventually(timeout: 75) { try succeeded("tick-probe") }
        let recent = try connection.query("SELECT status, return_message FROM cron.job_run_details ORDER BY start_time DESC LIMIT 3").rows
        #expect(ticked, "pg_cron ran the probe: \(recent)")
        #expect(try eventually(timeout: 15) { try succeeded("process-pending-orders") }, "and the seed's order drain")
        #expect(try connection.scalar("SELECT count(*) FROM jobs.job_overview WHERE failing") == "0", "no job is failing")
        try connection.execute("SELECT jobs.unschedule_job('tick-probe')")

        try migrator().down(.all, module: "feed")
        #expect(try cronJobs() == Self.orderJobs.union(Self.refreshJobs).union(Self.ledgerJobs), "the feed's down unschedules its pruning")
        try migrator().down(.version(6), module: "ledger")
        #expect(try cronJobs() == Self.orderJobs.union(Self.refreshJobs), "the ledger's down unschedules its drain")
        try migrator().down(.all, module: "refresh")
        #expect(try cronJobs() == Self.orderJobs, "the refresh engine's down unschedules exactly its jobs")
        try migrator().up()
        #expect(try cronJobs() == Self.seedJobs)

        try migrator().down(.version(1))
        #expect(try connection.scalar("SELECT count(*) FROM pg_extension WHERE extname = 'pg_cron'") == "0")
        try migrator().up()
        #expect(try cronJobs() == Self.seedJobs)
    }

    @Test func overlappingRunsExecuteOnceAndTheSecondIsSkipped() throws {
        let database = try BundleDatabase.fresh()
        try database.connect().execute("SELECT jobs.schedule_job('slow-job', '* * * * *', 'SELECT pg_sleep(1)')")
        let conninfo = database.conninfo
        let first = BackgroundWork {
            let outcome = try PGConnection(conninfo: conninfo).scalar("SELECT jobs.run_job('slow-job')")
            guard outcome == "succeeded" else { throw MigrateError.cluster("first run: \(outcome ?? "nil")") }
        }
        #expect(try eventually {
            try database.count("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT jobs.run_job%' AND state = 'active'") == 1
        })
        #expect(try database.scalar("SELECT jobs.run_job('slow-job')") == "skipped")
        try first.join()
        #expect(try database.connect().query("SELECT outcome FROM jobs.runs WHERE job_name = 'slow-job' ORDER BY outcome")
            .rows.map { $0[0]! } == ["skipped", "succeeded"])
    }

    @Test func eightProcessorsDrainTwentyThousandOrdersExactlyOnce() throws {
        let database = try BundleDatabase.fresh()
        try database.connect().execute(Self.orderBook)
        try database.connect().execute(
            """
            INSERT INTO jobs.order_queue (user_id, ticker, order_type, amount)
            SELECT md5('user' || (1 + (n * 7919) % 300))::uuid,
                   CASE WHEN n % 97 = 0 THEN 'NOPE' ELSE 'T' || (1 + (n * 31) % 20) END,
                   CASE WHEN n % 3 = 0 THEN 'sell' ELSE 'buy' END,
                   CASE WHEN n % 89 = 0 THEN -1 ELSE 1 + (n * 13) % 400 END
            FROM generate_series(1, 20000) n;
            """)
        let valueQuery = Self.bookValue
        let valueBefore = try database.scalar(valueQuery)
        let tally = LineCollector()
        let conninfo = database.conninfo
        let processors = (0..<8).map { _ in
            BackgroundWork {
                let connection = try PGConnection(conninfo: conninfo)
                var processed = 0
                while true {
                    do {
                        guard try connection.scalar("SELECT jobs.process_next_queue_order()") != nil else { break }
                        processed += 1
                    } catch let error as PostgresError {
                        tally.append("error \(error.sqlState) \(error.message)")
                    }
                }
                tally.append("processed \(processed)")
            }
        }
        for processor in processors { try processor.join() }
        let errors = tally.lines.filter { $0.hasPrefix("error") }
        #expect(errors.isEmpty, "\(errors.prefix(5))")
        let processed = tally.lines.compactMap { $0.hasPrefix("processed ") ? Int($0.dropFirst(10)) : nil }
        #expect(processed.count == 8)
        #expect(processed.reduce(0, +) == 20000)
        #expect(processed.filter { $0 > 0 }.count > 1, "the work was shared: \(processed)")
        #expect(try database.count("SELECT count(*) FROM jobs.order_queue WHERE status = 'pending'") == 0)
        #expect(try database.count("SELECT count(*) FROM jobs.trades") == database.count("SELECT count(*) FROM jobs.order_queue WHERE status = 'completed'"))
        #expect(try database.count("SELECT count(DISTINCT order_id) FROM jobs.trades") == database.count("SELECT count(*) FROM jobs.trades"))
        #expect(try database.count("SELECT count(*) FROM jobs.order_queue WHERE status = 'failed'") > 0)
        #expect(try database.scalar(valueQuery) == valueBefore)
        #expect(try database.count("SELECT count(*) FROM jobs.balances WHERE cash < 0") == 0)
    }

    @Test func anInsertWakesAListeningProcessorAndARollbackDoesNot() throws {
        let database = try BundleDatabase.fresh()
        let setup = try database.connect()
        try setup.execute(
            """
            INSERT INTO jobs.issuers (ticker, name, current_price) VALUES ('AAA', 'Alpha', 10);
            INSERT INTO jobs.balances (user_id, cash) VALUES ('00000000-0000-0000-0000-000000000001', 100);
            """)
        let listener = try database.connect()
        try listener.execute("LISTEN jobs_order_queue")
        try setup.execute(
            """
            BEGIN;
            INSERT INTO jobs.order_queue (user_id, ticker, order_type, amount)
            VALUES ('00000000-0000-0000-0000-000000000001', 'AAA', 'buy', 10);
            ROLLBACK;
            """)
        #expect(try listener.waitForNotification(timeout: 0.5) == nil)
        try setup.execute(
            """
            INSERT INTO jobs.order_queue (user_id, ticker, order_type, amount)
            SELECT '00000000-0000-0000-0000-000000000001', 'AAA', 'buy', 10 FROM generate_series(1, 3);
            """)
        let wake = try listener.waitForNotification(timeout: 5)
        #expect(wake?.channel == "jobs_order_queue")
        #expect(wake?.payload == "3")
        #expect(wake?.senderPID == setup.backendPID)
        #expect(try listener.waitForNotification(timeout: 0.2) == nil, "one notification per statement")
        var processed = 0
        while try listener.scalar("SELECT jobs.process_next_queue_order()") != nil { processed += 1 }
        #expect(processed == 3)
        #expect(try database.scalar("SELECT cash FROM jobs.balances") == "70.000000000000")
    }
}
