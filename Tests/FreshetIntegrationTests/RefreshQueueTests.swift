import Foundation
import Testing

@testable import Freshet

/// The refresh engine under concurrency: many sessions at once, as workers and cron really call it.
@Suite struct RefreshQueueTests {
    /// Thread-safe tallies shared by the worker threads.
    final class Tally: @unchecked Sendable {
        private let lock = NSLock()
        private var claimed: [String] = []
        private var failures: [String] = []
        private var counters: [String: Int] = [:]

        func claim(_ keys: [String]) { lock.withLock { claimed += keys } }
        func error(_ text: String) { lock.withLock { failures.append(text) } }
        func add(_ counter: String, _ amount: Int = 1) { lock.withLock { counters[counter, default: 0] += amount } }

        var claims: [String] { lock.withLock { claimed } }
        var errors: [String] { lock.withLock { failures } }
        func count(_ counter: String) -> Int { lock.withLock { counters[counter, default: 0] } }
    }

    final class Flag: @unchecked Sendable {
        private let lock = NSLock()
        private var raised = false
        var isRaised: Bool { lock.withLock { raised } }
        func raise() { lock.withLock { raised = true } }
    }

    @Test func sixteenWorkersDrainOneHundredThousandJobsWithFailuresAndRecovery() throws {
        let jobs = 100_000
        let quota = 60_000
        let database = try BundleDatabase.fresh()
        let setup = try database.connect()
        try setup.execute(
            """
            SELECT refresh.set_setting('max_attempts', '3');
            -- At the tail of the drain, abandoned jobs on their last attempt expire together and count
            -- as failed calls among the last few claims: a 100 ms window can pass the ratio on a
            -- handful of calls. The breaker is tested on its own in pgTAP; here 4% failures must not open it.
            SELECT refresh.set_setting('breaker_min_calls', '100');
            SELECT refresh.set_setting('job_lease', '5 seconds');
            SELECT refresh.set_setting('retry_base_delay', '10 milliseconds');
            SELECT refresh.set_setting('retry_max_delay', '100 milliseconds');
            SELECT refresh.set_setting('quota_max_calls', '\(quota)');
            SELECT refresh.queue_refreshes('quote', ARRAY(SELECT 'S' || n FROM generate_series(1, \(jobs)) n), 0);
            """)
        #expect(try database.count("SELECT count(*) FROM refresh.api_call_queue_pending") == jobs)

        let tally = Tally()
        let stop = Flag()
        let conninfo = database.conninfo
        let workers = (0..<16).map { index in
            BackgroundWork {
                let connection = try PGConnection(conninfo: conninfo)
                let worker = "w\(index)"
                var random = SystemRandomNumberGenerator()
                while !stop.isRaised {
                    do {
                        let batch = try connection.query(
                            "SELECT id, attempts, lease_token FROM refresh.get_queue_batch($1, $2)", [worker, String(Int.random(in: 1...20))]
                        ).rows
                        if batch.isEmpty {
                            usleep(5_000)
                            continue
                        }
                        tally.claim(batch.map { "\($0[0]!)#\($0[1]!)" })
                        var succeeded: [(id: String, lease: String)] = []
                        for job in batch {
                            let roll = Int.random(in: 0..<1000, using: &random)
                            if roll < 2 {
                                tally.add("abandoned")  // a worker that died holding the job
                            } else if roll < 42 {
                                let status = try connection.scalar("SELECT refresh.fail_queue_job($1, 'HTTP 503', $2)", [job[0], job[2]])
                                tally.add("failed attempt")
                                if status == "failed" { tally.add("gave up") }
                            } else if index % 2 == 0 {
                                _ = try connection.query("SELECT refresh.complete_queue_job($1, 2048, $2)", [job[0], job[2]])
                                tally.add("completed")
                            } else {
                                succeeded.append((job[0]!, job[2]!))
                            }
                        }
                        if !succeeded.isEmpty {
                            // Half the workers complete what succeeded in one call.
                            let ids = "{\(succeeded.map(\.id).joined(separator: ","))}"
                            let sizes = "{\(succeeded.map { _ in "2048" }.joined(separator: ","))}"
                            let leases = "{\(succeeded.map(\.lease).joined(separator: ","))}"
                            let count = try connection.scalar("SELECT refresh.complete_queue_jobs($1, $2, $3)", [ids, sizes, leases])
                            tally.add("completed", Int(count ?? "") ?? -1_000_000)
                        }
                    } catch {
                        tally.error("\(worker): \(error)")
                    }
                }
            }
        }
        let housekeeping = BackgroundWork {
            let connection = try PGConnection(conninfo: conninfo)
            while !stop.isRaised {
                do {
                    let loop = try connection.scalar("SELECT refresh.invoke_processor_loop() ->> 'status'")
                    if loop != "ok" { tally.error("processor loop: \(loop ?? "nil")") }
                    let orphans = try connection.scalar("SELECT refresh.maintain_queue_partitions() ->> 'orphan_keys_removed'")
                    if orphans != "0" { tally.error("maintenance removed \(orphans ?? "nil") orphan keys") }
                    let used = Int(try connection.scalar("SELECT calls_used FROM refresh.quota_state()") ?? "") ?? -1
                    tally.add("quota samples")
                    if used > quota, try connection.scalar("SELECT refresh.setting('quota_max_calls')") == String(quota) {
                        tally.error("quota exceeded: \(used) calls")
                    }
                } catch {
                    tally.error("housekeeping: \(error)")
                }
                usleep(100_000)
            }
        }

        // Phase 1: the quota binds. Claims stop at it, and every claim in flight finishes as one call.
        let quotaReached = try eventually(timeout: 120) {
            try database.scalar("SELECT calls_used = \(quota) AND NOT EXISTS (SELECT FROM refresh.api_call_queue_processing) FROM refresh.quota_state()") == "t"
        }
        #expect(quotaReached)
        usleep(300_000)
        #expect(try database.scalar("SELECT calls_used FROM refresh.quota_state()") == String(quota), "claims stopped at the quota")
        #expect(try database.count("SELECT count(*) FROM refresh.api_call_queue_pending") > 0, "work was left for the next period")

        // Phase 2: a larger quota; everything drains, abandoned jobs after their lease.
        try setup.execute("SELECT refresh.set_setting('quota_max_calls', '10000000')")
        let drained = try eventually(timeout: 180) {
            try database.count("SELECT count(*) FROM refresh.api_call_queue WHERE status IN ('pending', 'processing')") == 0
        }
        stop.raise()
        for worker in workers { try worker.join() }
        try housekeeping.join()
        #expect(drained)

        #expect(tally.errors.isEmpty, "errors surfaced: \(tally.errors.prefix(5))")
        let claims = tally.claims
        #expect(Set(claims).count == claims.count, "a job attempt was claimed twice")
        #expect(try database.count("SELECT count(*) FROM refresh.api_call_queue") == jobs, "no job lost or duplicated")
        #expect(try database.count("SELECT count(DISTINCT id) FROM refresh.api_call_queue") == jobs)
        #expect(try database.count("SELECT count(*) FROM refresh.api_call_queue_completed") == tally.count("completed"))
        #expect(try database.count("SELECT count(*) FROM refresh.api_call_queue_failed") >= tally.count("gave up"))
        #expect(try database.count("SELECT count(*) FROM refresh.active_job_keys") == 0)
        #expect(try database.count("SELECT sum(calls) FROM refresh.api_data_usage") == claims.count, "every claim is one call")
        #expect(try database.count("SELECT sum(attempts) FROM refresh.api_call_queue") == claims.count)
        #expect(tally.count("abandoned") > 0 && tally.count("failed attempt") > 0, "failures and recovery happened")
        #expect(try database.count("SELECT count(*) FROM refresh.api_call_queue WHERE last_error LIKE 'lease expired%'") > 0)
        #expect(tally.count("quota samples") > 10)
        #expect(try database.scalar("SELECT state FROM refresh.circuit_breaker") == "closed")
    }

    @Test func sixteenSessionsEnqueueingOnePairLeaveOneJob() throws {
        let database = try BundleDatabase.fresh()
        let gate = try database.connect()
        try gate.execute("SELECT pg_advisory_lock(7007)")
        // Four ways in, four sessions each, all released at once.
        let paths = [
            "SELECT refresh.queue_refresh_if_not_exists('SAME', 'quote', 1, NULL)",
            "SELECT refresh.queue_refreshes('quote', ARRAY['SAME'], 0)",
            "SELECT outcome FROM refresh.check_and_queue_stale_batch('SAME', ARRAY['quote'], 1)",
            "INSERT INTO refresh.subscriptions (client_id, symbol, data_types) VALUES ('c' || pg_backend_pid(), 'SAME', '{quote}')",
        ]
        let conninfo = database.conninfo
        let tally = Tally()
        let sessions = (0..<16).map { index in
            BackgroundWork {
                do {
                    _ = try PGConnection(conninfo: conninfo).execute(
                        "BEGIN; SELECT pg_advisory_xact_lock_shared(7007); \(paths[index % 4]); COMMIT;")
                } catch {
                    tally.error("\(error)")
                }
            }
        }
        #expect(try eventually {
            try database.count("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 7007 AND NOT granted") == 16
        })
        try gate.execute("SELECT pg_advisory_unlock(7007)")
        for session in sessions { try session.join() }
        #expect(tally.errors.isEmpty, "\(tally.errors)")
        #expect(try database.count("SELECT count(*) FROM refresh.api_call_queue WHERE symbol = 'SAME'") == 1)
        #expect(try database.scalar("SELECT priority FROM refresh.api_call_queue WHERE symbol = 'SAME'") == "1")
        #expect(try database.count("SELECT count(*) FROM refresh.subscriptions WHERE symbol = 'SAME'") == 4)
    }

    @Test(arguments: [
        ("refresh.check_and_queue_stale_data_from_presence()", "refresh-stale-sweep"),
        ("refresh.queue_scheduled_refreshes()", "refresh-scheduled-refreshes"),
        ("refresh.invoke_processor_loop()", "refresh-processor-loop"),
    ])
    func aSecondCallWhileTheFirstRunsIsSkipped(function: String, job: String) throws {
        let database = try BundleDatabase.fresh()
        let first = try database.connect()
        #expect(try first.execute("BEGIN; SELECT \(function) ->> 'status';").last?.rows.first?[0] == "ok")
        let second = try database.connect()
        #expect(try second.scalar("SELECT \(function) ->> 'status'") == "skipped")
        #expect(try second.scalar("SELECT jobs.run_job($1)", [job]) == "skipped", "the cron job skips too")
        try first.execute("COMMIT")
        #expect(try second.scalar("SELECT \(function) ->> 'status'") == "ok")
        #expect(try second.scalar("SELECT jobs.run_job($1)", [job]) == "succeeded")
    }

    @Test func workersHearOneWakeUpPerEnqueueAndPerLoopWithRunnableWork() throws {
        let database = try BundleDatabase.fresh()
        let worker = try database.connect()
        try worker.execute("LISTEN refresh_queue")
        let producer = try database.connect()
        #expect(try producer.scalar("SELECT refresh.invoke_processor_loop() ->> 'notified'") == "false")
        #expect(try worker.waitForNotification(timeout: 0.3) == nil, "no wake-up without runnable work")
        try producer.execute("BEGIN; SELECT refresh.queue_refreshes('quote', ARRAY['A', 'B', 'C'], 0); ROLLBACK;")
        #expect(try worker.waitForNotification(timeout: 0.3) == nil, "none for a rolled-back enqueue")
        _ = try producer.scalar("SELECT refresh.queue_refreshes('quote', ARRAY['A', 'B', 'C'], 0)")
        #expect(try worker.waitForNotification(timeout: 5)?.payload == "enqueued")
        #expect(try worker.waitForNotification(timeout: 0.3) == nil, "one per statement, not per job")
        #expect(try producer.scalar("SELECT refresh.invoke_processor_loop() ->> 'notified'") == "true")
        #expect(try worker.waitForNotification(timeout: 5)?.payload == "runnable")
        #expect(try worker.waitForNotification(timeout: 0.3) == nil, "at most one per loop")
        #expect(try worker.query("SELECT id FROM refresh.get_queue_batch('w', 10)").rows.count == 3)
    }

    @Test func aSubscriptionQueuesExactlyItsStaleTypesInItsOwnTransaction() throws {
        let database = try BundleDatabase.fresh()
        let client = try database.connect()
        try client.execute(
            """
            INSERT INTO refresh.profiles VALUES ('NVDA', '{}', now());
            INSERT INTO refresh.ratios_ttm VALUES ('NVDA', '{}', now() - interval '2 days');
            INSERT INTO refresh.shares_float VALUES ('NVDA', '{}', now() - interval '1 hour');
            """)
        let allTypes = try client.query("SELECT data_type FROM refresh.data_type_registry WHERE refresh_strategy = 'on-demand'")
            .rows.map { $0[0]! }
        let insert = "INSERT INTO refresh.subscriptions (client_id, symbol, data_types) VALUES ('c1', 'NVDA', $1)"
        let queued = "SELECT string_agg(data_type || '@' || priority, ',' ORDER BY data_type) FROM refresh.api_call_queue WHERE symbol = 'NVDA'"
        let expected = Set(allTypes).subtracting(["profile", "shares-float"]).map { "\($0)@1" }.sorted().joined(separator: ",")

        try client.execute("BEGIN")
        _ = try client.query(insert, ["{\(allTypes.joined(separator: ","))}"])
        #expect(try client.scalar(queued) == expected, "queued inside the inserting transaction")
        #expect(try database.connect().scalar(queued) == nil, "and invisible until it commits")
        try client.execute("COMMIT")
        #expect(try database.connect().scalar(queued) == expected, "visible to workers the moment it commits")
    }
}
