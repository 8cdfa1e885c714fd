import Foundation
import Testing

@testable import Freshet

/// The hardening that takes more than one session: processors that must never deadlock, a drain
/// that goes past orders no column can hold, and advisory keys squatted by a role with no grants.
@Suite struct SecurityTests {
    static let process = "SELECT jobs.process_next_queue_order()"

    /// Whether the backend `pid` waits on a heavyweight lock.
    static func isWaitingOnALock(_ pid: Int32, monitor: PGConnection) throws -> Bool {
        try monitor.scalar("SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $1", [String(pid)]) == "t"
    }

    /// The interleaving that deadlocked: the draining job holds user A's balance and the ticker's
    /// stats mark, a listening processor holds user B's balance and marks the same ticker, then the
    /// drain reaches B's next order. The drain must wait for the processor, never deadlock.
    @Test func theDrainAndAListeningProcessorNeverDeadlockOverOneTicker() throws {
        let database = try BundleDatabase.fresh()
        let setup = try database.connect()
        try setup.execute(
            """
            INSERT INTO jobs.issuers (ticker, name, current_price) VALUES ('XYZ', 'Xyz', 10);
            INSERT INTO jobs.balances (user_id, cash) VALUES
                ('00000000-0000-0000-0000-00000000000a', 1000), ('00000000-0000-0000-0000-00000000000b', 1000);
            INSERT INTO jobs.order_queue (user_id, ticker, order_type, amount) VALUES
                ('00000000-0000-0000-0000-00000000000a', 'XYZ', 'buy', 10),
                ('00000000-0000-0000-0000-00000000000b', 'XYZ', 'buy', 20),
                ('00000000-0000-0000-0000-00000000000b', 'XYZ', 'buy', 30);
            """)
        let orders = try setup.query("SELECT id FROM jobs.order_queue ORDER BY id").rows.map { $0[0]! }
        let drain = try database.connect()
        // A deadlock, if there were one, is found in 50 ms; nothing waits longer than 20 s.
        let patience = "SET deadlock_timeout = '50ms'; SET lock_timeout = '20s'"
        try drain.execute(patience)
        let conninfo = database.conninfo
        let errors = LineCollector()
        let progress = LineCollector()

        try drain.execute("BEGIN")
        #expect(try drain.scalar(Self.process) == orders[0], "the drain takes user A's order and marks the ticker")
        let drainPID = drain.backendPID
        let listening = BackgroundWork {
            let processor = try PGConnection(conninfo: conninfo)
            let monitor = try PGConnection(conninfo: conninfo)
            do {
                try processor.execute(patience)
                try processor.execute("BEGIN")
                let taken = try processor.scalar(Self.process)
                if taken != orders[1] { errors.append("the processor took \(taken ?? "nothing"), not user B's first order") }
                progress.append("processed")
                // Hold B's balance until the drain waits for it, as a slower processor would.
                _ = try eventually(timeout: 10) { try Self.isWaitingOnALock(drainPID, monitor: monitor) }
                try processor.execute("COMMIT")
            } catch let error as PostgresError {
                errors.append("processor \(error.sqlState): \(error.message)")
                _ = try? processor.execute("ROLLBACK")
            }
        }
        // The processor must finish its order while the drain's transaction is open, not queue behind it.
        let processorDone = eventually(timeout: 10) { progress.lines.contains("processed") }
        #expect(processorDone, "the processor executed user B's order without waiting for the drain")
        do {
            #expect(try drain.scalar(Self.process) == orders[2], "the drain reaches user B's second order and waits for B's balance")
            try drain.execute("COMMIT")
        } catch let error as PostgresError {
            errors.append("drain \(error.sqlState): \(error.message)")
            _ = try? drain.execute("ROLLBACK")
        }
        try listening.join()
        #expect(errors.lines.isEmpty, "\(errors.lines)")
        #expect(try database.scalar("SELECT string_agg(status, ' ' ORDER BY id) FROM jobs.order_queue") == "completed completed completed")
        #expect(try database.scalar("SELECT sum(cash) FROM jobs.balances") == "1940.000000000000")
    }

    /// Orders whose numbers overflow are spread through the queue; four listening processors and
    /// the draining job share it. Every order ends, the bad ones failed with a reason, and money is conserved.
    @Test func overflowingOrdersFailWithAReasonAndTheDrainGoesOn() throws {
        let database = try BundleDatabase.fresh()
        try database.connect().execute(
            """
            INSERT INTO jobs.issuers (ticker, name, current_price) VALUES ('AAA', 'Alpha', 10), ('TINY', 'Tiny', 0.000001);
            INSERT INTO jobs.balances (user_id, cash) SELECT md5('user' || n)::uuid, 1e40 FROM generate_series(1, 50) n;
            INSERT INTO jobs.order_queue (user_id, ticker, order_type, amount)
            SELECT md5('user' || (1 + n % 50))::uuid,
                   CASE WHEN n % 50 = 7 THEN 'TINY' ELSE 'AAA' END, 'buy',
                   CASE WHEN n % 50 = 7 THEN ('9' || repeat('0', 131070))::numeric
                        WHEN n % 50 = 11 THEN 1e30
                        ELSE 1 + n % 40 END
            FROM generate_series(1, 2000) n;
            """)
        let valueQuery = """
            SELECT (SELECT sum(cash) FROM jobs.balances)
                 + (SELECT coalesce(sum(h.shares * i.current_price), 0) FROM jobs.holdings h JOIN jobs.issuers i USING (ticker))
            """
        let valueBefore = try database.scalar(valueQuery)
        let errors = LineCollector()
        let conninfo = database.conninfo
        let processors = (0..<4).map { _ in
            BackgroundWork {
                let connection = try PGConnection(conninfo: conninfo)
                while true {
                    do {
                        guard try connection.scalar(Self.process) != nil else { break }
                    } catch let error as PostgresError {
                        errors.append("\(error.sqlState) \(error.message)")
                    }
                }
            }
        }
        let drain = BackgroundWork {
            let connection = try PGConnection(conninfo: conninfo)
            do {
                while try connection.scalar("SELECT jobs.process_all_pending_orders(200)") != "0" {}
            } catch let error as PostgresError {
                errors.append("drain \(error.sqlState) \(error.message)")
            }
        }
        for processor in processors { try processor.join() }
        try drain.join()
        #expect(errors.lines.isEmpty, "\(errors.lines.prefix(5))")
        #expect(try database.count("SELECT count(*) FROM jobs.order_queue WHERE status = 'pending'") == 0)
        #expect(try database.count("SELECT count(*) FROM jobs.order_queue WHERE status = 'failed' AND failure_reason LIKE '%SQLSTATE 22003%'") == 80)
        #expect(try database.count("SELECT count(*) FROM jobs.order_queue WHERE status = 'completed'") == 1920)
        #expect(try database.connect().scalar("SELECT (\(valueQuery)) = $1::numeric", [valueBefore]) == "t", "money is conserved")
    }

    /// A login role with no grants takes Freshet's advisory keys and holds them.
    @Test func squattedKeysAreReportedAndStallNoCommit() throws {
        let database = try BundleDatabase.fresh()
        let setup = try database.connect()
        let squatterRole = "squatter_\(getpid())_\(Int.random(in: 0..<1_000_000))"
        try setup.execute(
            """
            CREATE ROLE \(squatterRole) LOGIN;
            CREATE SCHEMA app;
            CREATE TABLE app.notes (id int PRIMARY KEY, body text);
            SELECT feed.watch('app.notes');
            """)
        defer { _ = try? setup.execute("DROP OWNED BY \(squatterRole); DROP ROLE \(squatterRole)") }
        #expect(try setup.scalar("SELECT healthy FROM feed.health()") == "t")
        #expect(try setup.scalar("SELECT refresh.health_check() ->> 'healthy'") == "true")

        let squatter = try PGConnection(conninfo: database.conninfo + " user=\(squatterRole)")
        try squatter.execute("SELECT pg_advisory_lock(46), pg_advisory_lock(42), pg_advisory_lock(1835624306, 1)")
        #expect(throws: PostgresError.self, "the commit gate is no advisory key: it cannot be taken") {
            try squatter.execute("BEGIN; LOCK TABLE feed.commit_gate; COMMIT")
        }
        _ = try? squatter.execute("ROLLBACK")

        let held = try setup.query(
            "SELECT lock_key, held_for, pid, role_name FROM jobs.squatted_locks() ORDER BY lock_key").rows
        #expect(held.map { $0[0]! } == ["1835624306, 1", "42", "46"])
        #expect(held.map { $0[1]! } == ["the migrate runner", "job refresh-stale-sweep", "job feed-prune"])
        #expect(Set(held.map { $0[2]! }) == [String(squatter.backendPID)])
        #expect(Set(held.map { $0[3]! }) == [squatterRole])
        #expect(try setup.scalar("SELECT healthy FROM feed.health()") == "f", "feed.health() is unhealthy while a key is squatted")
        #expect(try setup.scalar("SELECT jsonb_array_length(squatted_locks) FROM feed.health()") == "3")
        #expect(try setup.scalar("SELECT refresh.health_check() ->> 'healthy'") == "false", "so is refresh.health_check()")
        #expect(try setup.scalar("SELECT refresh.health_check() -> 'squatted_locks' -> 0 ->> 'role'") == squatterRole)

        // What the keys guard reports, or refuses at once; nothing waits for the squatter.
        try setup.execute("SET lock_timeout = '5s'")
        #expect(try setup.scalar("SELECT jobs.run_job('feed-prune')") == "skipped")
        #expect(throws: PostgresError.self, "a prune refuses at once rather than wait on key 46") {
            try setup.execute("SELECT feed.prune_change_log()")
        }
        let started = Date()
        try setup.execute("INSERT INTO app.notes VALUES (1, 'written while keys are squatted')")
        #expect(Date().timeIntervalSince(started) < 4, "a commit to a watched table does not wait on any key the squatter holds")
        #expect(try setup.scalar("SELECT count(*) FROM feed.changes_since('0/0')") == "1")

        try squatter.execute("SELECT pg_advisory_unlock_all()")
        #expect(try setup.scalar("SELECT healthy FROM feed.health()") == "t", "healthy again once the keys are released")
        #expect(try setup.scalar("SELECT refresh.health_check() ->> 'healthy'") == "true")
    }
}
