import Foundation
import Testing

@testable import Freshet

/// The change feed across real sessions: NOTIFY hints, commit order, and readers that resume from cursors.
@Suite struct FeedTests {
    /// A migrated database with `app.accounts` (rows owned by users) and `app.counters` (rows every writer
    /// fights over) watched. The counters exist before capture starts, each at version 0.
    static func database() throws -> TestDatabase {
        let database = try BundleDatabase.fresh()
        try database.connect().execute("""
            CREATE SCHEMA app;
            CREATE TABLE app.accounts (id bigint PRIMARY KEY, user_id text NOT NULL, balance bigint NOT NULL, note text);
            CREATE TABLE app.counters (id int PRIMARY KEY, version bigint NOT NULL);
            INSERT INTO app.counters SELECT n, 0 FROM generate_series(1, \(counters)) n;
            SELECT feed.watch('app.accounts', 'user_id');
            SELECT feed.watch('app.counters');
            """)
        return database
    }

    static let counters = 8

    static func payload(_ notification: PGConnection.Notification) throws -> [String: String] {
        let object = try JSONSerialization.jsonObject(with: Data(notification.payload.utf8)) as? [String: Any] ?? [:]
        return object.mapValues { "\($0)" }
    }

    @Test func aListenerIsWokenByCommittedStatementsOnlyWithASmallHint() throws {
        let database = try Self.database()
        let listener = try database.connect()
        try listener.execute("LISTEN feed_app_accounts")
        let writer = try database.connect()

        try writer.execute("INSERT INTO app.accounts VALUES (1, 'u1', 10, NULL)")
        let hint = try #require(try listener.waitForNotification(timeout: 10))
        #expect(hint.channel == "feed_app_accounts")
        #expect(try Self.payload(hint) == [
            "table": "app.accounts", "operation": "INSERT", "id": try #require(try writer.scalar("SELECT max(id) FROM feed.change_log")),
        ])

        try writer.execute("BEGIN; INSERT INTO app.accounts VALUES (2, 'u1', 10, NULL); UPDATE app.accounts SET balance = 0; ROLLBACK")
        #expect(try listener.waitForNotification(timeout: 1) == nil, "a rolled-back transaction sends no hint")

        try writer.execute("INSERT INTO app.accounts SELECT n, 'u2', n, NULL FROM generate_series(10, 1009) n")
        let bulk = try #require(try listener.waitForNotification(timeout: 10))
        #expect(try Self.payload(bulk)["id"] == (try writer.scalar("SELECT max(id) FROM feed.change_log")))
        #expect(try listener.waitForNotification(timeout: 1) == nil, "a 1,000-row statement sends one hint")

        let before = try #require(try writer.scalar("SELECT feed.current_cursor()"))
        try writer.execute("INSERT INTO app.accounts VALUES (5000, 'u1', 1, repeat('x', 100000))")
        let large = try #require(try listener.waitForNotification(timeout: 10))
        #expect(large.payload.utf8.count < 100, "the hint stays small: \(large.payload)")
        #expect(try writer.scalar("SELECT length(row_data ->> 'note') FROM feed.changes_since($1)", [before]) == "100000",
            "the 100 KB row is delivered through the log")
    }

    @Test func aTransactionThatCommitsAfterAReadIsDeliveredThoughItsChangeIdIsSmaller() throws {
        let database = try Self.database()
        let early = try database.connect()
        let late = try database.connect()
        let reader = try database.connect()
        let start = try #require(try reader.scalar("SELECT feed.current_cursor()"))
        let read = "SELECT change_cursor, row_data ->> 'note', change_id FROM feed.changes_since($1)"

        try early.execute("BEGIN; INSERT INTO app.accounts VALUES (1, 'u1', 1, 'early')")
        try late.execute("INSERT INTO app.accounts VALUES (2, 'u1', 2, 'late')")
        let first = try reader.query(read, [start]).rows
        #expect(first.map { $0[1] } == ["late"], "the open transaction is not visible yet")

        try early.execute("COMMIT")
        let cursor = try #require(first.last?[0])
        let second = try reader.query(read, [cursor]).rows
        #expect(second.map { $0[1] } == ["early"], "resuming after the later change still delivers the earlier id")
        #expect(Int(second.first?[2] ?? "") ?? .max < Int(first.first?[2] ?? "") ?? 0)
        #expect(try reader.query(read, [try #require(second.last?[0])]).rows.isEmpty)
    }

    /// One delivered change, as a reader keeps it.
    struct Change: Equatable {
        var cursor: String
        var commitSequence: Int
        var id: Int
        var table: String
        var operation: String
        var key: String
        var row: String?

        init(_ row: [String?]) {
            cursor = row[0] ?? ""
            commitSequence = Int(row[1] ?? "") ?? -1
            id = Int(row[2] ?? "") ?? -1
            table = row[3] ?? ""
            operation = row[4] ?? ""
            key = row[5] ?? ""
            self.row = row[6]
        }

        static let columns = "change_cursor, commit_seq, change_id, table_name, operation, row_key ->> 'id', row_data::text"
    }

    /// The cursor readers stop at, once every writer is done.
    final class FinalCursor: @unchecked Sendable {
        private let lock = NSLock()
        private var cursor: String?
        var value: String? {
            get { lock.withLock { cursor } }
            set { lock.withLock { cursor = newValue } }
        }
    }

    @Test func eightWritersAndTwoResumingReadersDeliverEveryCommittedChangeOnceInCommitOrder() throws {
        let database = try Self.database()
        let conninfo = database.conninfo
        let setup = try database.connect()
        // Work that other deferred triggers do at commit (deferred foreign keys, say) can fall between a
        // transaction's commit stamp and its commit; this widens that gap to up to 10 ms.
        try setup.execute("""
            CREATE FUNCTION app.slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(random() * 0.01); RETURN NULL; END $$;
            CREATE CONSTRAINT TRIGGER counters_slow_commit AFTER UPDATE ON app.counters
                DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION app.slow_commit();
            """)
        let start = try #require(try setup.scalar("SELECT feed.current_cursor()"))
        let readers = ["reader-0", "reader-1"]
        for client in readers {
            try setup.query("SELECT feed.subscribe($1, 'app.accounts', start_cursor => $2)", [client, start])
            try setup.query("SELECT feed.subscribe($1, 'app.counters', start_cursor => $2)", [client, start])
        }
        let tally = RefreshQueueTests.Tally()
        let final = FinalCursor()

        let writers = (0..<8).map { index in
            BackgroundWork {
                let connection = try PGConnection(conninfo: conninfo)
                var random = SplitMix64(seed: UInt64(2_026 + index))
                var owned: [Int] = []
                var nextID = index * 1_000_000
                for _ in 0..<120 {
                    let rollBack = Int.random(in: 0..<10, using: &random) == 0
                    let holdOpen = Int.random(in: 0..<12, using: &random) == 0
                    var current = owned
                    var statements: [String] = []
                    var changes = 0
                    for _ in 0..<Int.random(in: 1...3, using: &random) {
                        switch Int.random(in: 0..<3, using: &random) {
                        case 0:
                            let ids = (0..<Int.random(in: 1...5, using: &random)).map { offset in nextID + offset + 1 }
                            nextID += ids.count
                            current += ids
                            let note = rollBack ? "'rolled back'" : "NULL"
                            statements.append("INSERT INTO app.accounts SELECT id, 'u' || id % 3, 0, \(note) FROM unnest('{\(ids.map(String.init).joined(separator: ","))}'::bigint[]) id")
                            changes += ids.count
                        case 1 where !current.isEmpty:
                            statements.append("UPDATE app.accounts SET balance = balance + 1 WHERE id = \(current.randomElement(using: &random)!)")
                            changes += 1
                        case 2 where !current.isEmpty:
                            let victim = current.remove(at: Int.random(in: 0..<current.count, using: &random))
                            statements.append("DELETE FROM app.accounts WHERE id = \(victim)")
                            changes += 1
                        default:
                            break
                        }
                    }
                    // One contended counter per transaction at most, last, so writers never deadlock.
                    if Bool.random(using: &random) {
                        statements.append("UPDATE app.counters SET version = version + 1 WHERE id = \(Int.random(in: 1...Self.counters, using: &random))")
                        changes += 1
                    }
                    do {
                        try connection.execute("BEGIN")
                        for statement in statements { try connection.execute(statement) }
                        if holdOpen {
                            // Readers read past this transaction while it is open.
                            Thread.sleep(forTimeInterval: Double.random(in: 0.05...0.2, using: &random))
                            tally.add("held open")
                        }
                        try connection.execute(rollBack ? "ROLLBACK" : "COMMIT")
                        if !rollBack {
                            owned = current
                            tally.add("changes", changes)
                        }
                    } catch {
                        tally.error("writer \(index): \(error)")
                        _ = try? connection.execute("ROLLBACK")
                    }
                }
            }
        }

        let deliveries = (0..<readers.count).map { _ in Deliveries() }
        let readerWork = readers.enumerated().map { index, client in
            BackgroundWork {
                var random = SplitMix64(seed: UInt64(77 + index))
                func connect() throws -> PGConnection {
                    let connection = try PGConnection(conninfo: conninfo)
                    try connection.execute("LISTEN feed_app_accounts; LISTEN feed_app_counters")
                    return connection
                }
                var connection = try connect()
                var cursor = start
                let deadline = Date().addingTimeInterval(300)
                while Date() < deadline {
                    if Int.random(in: 0..<6, using: &random) == 0 {
                        connection = try connect()   // the old session is gone; only the cursor is kept
                        tally.add("reconnects")
                    }
                    let page = try connection.query(
                        "SELECT \(Change.columns) FROM feed.changes_for($1, $2, $3)",
                        [client, cursor, String(Int.random(in: 1...40, using: &random))]
                    ).rows.map(Change.init)
                    if !page.isEmpty && Int.random(in: 0..<10, using: &random) == 0 {
                        tally.add("pages lost before processing")   // read again from the same cursor
                        continue
                    }
                    deliveries[index].append(page)
                    if let last = page.last { cursor = last.cursor }
                    if page.isEmpty {
                        if let stop = final.value, stop == cursor { return }
                        _ = try connection.waitForNotification(timeout: 0.2)
                    }
                }
                tally.error("\(client) did not catch up with the writers within 300 s; it is at \(cursor)")
            }
        }
        for writer in writers { try writer.join() }
        final.value = try setup.scalar("SELECT feed.current_cursor()")
        for reader in readerWork { try reader.join() }

        #expect(tally.errors.isEmpty, "\(tally.errors.prefix(5))")
        #expect(tally.count("held open") > 0 && tally.count("reconnects") > 0 && tally.count("pages lost before processing") > 0)
        let log = try setup.query("SELECT \(Change.columns) FROM feed.changes_since($1, 1000000)", [start]).rows.map(Change.init)
        #expect(log.count == tally.count("changes"), "the log holds exactly the committed changes")
        #expect(!log.contains { $0.row?.contains("rolled back") == true }, "and nothing rolled back")
        #expect(zip(log, log.dropFirst()).contains { $0.id > $1.id },
            "some transaction committed after a later change id was read (held-open transactions)")

        let finalRows = Dictionary(uniqueKeysWithValues: try setup.query("""
            SELECT 'app.accounts/' || id, to_jsonb(a)::text FROM app.accounts a
            UNION ALL SELECT 'app.counters/' || id, to_jsonb(c)::text FROM app.counters c
            """).rows.map { ($0[0]!, $0[1]!) })
        for (index, delivered) in deliveries.map(\.changes).enumerated() {
            #expect(delivered == log, "reader \(index) received every committed change exactly once, in log order")
            #expect(zip(delivered, delivered.dropFirst()).allSatisfy { ($0.commitSequence, $0.id) < ($1.commitSequence, $1.id) })
            var versions: [String: [Int]] = [:]
            var replayed: [String: String] = [:]
            for counter in 1...Self.counters { replayed["app.counters/\(counter)"] = #"{"id": \#(counter), "version": 0}"# }
            for change in delivered {
                let key = "\(change.table)/\(change.key)"
                replayed[key] = change.operation == "DELETE" ? nil : change.row
                if change.table == "app.counters", let row = change.row,
                   let version = row.split(separator: " ").last.flatMap({ Int($0.dropLast()) }) {
                    versions[key, default: []].append(version)
                }
            }
            #expect(versions.values.allSatisfy { $0 == Array(1...$0.count) },
                "reader \(index) saw every counter's versions 1, 2, 3... in the order they were committed")
            #expect(replayed == finalRows, "replaying reader \(index)'s changes in order rebuilds both tables exactly")
        }
    }

    /// What one reader received, appended from its thread and read after it joined.
    final class Deliveries: @unchecked Sendable {
        private let lock = NSLock()
        private var received: [Change] = []
        var changes: [Change] { lock.withLock { received } }
        func append(_ page: [Change]) { lock.withLock { received += page } }
    }

    /// pg_dump and a restore give the table another OID, which the generated capture names:
    /// writes are refused until feed.repair_after_restore() sets the capture up again.
    @Test func aRestoredDatabaseCapturesAgainOnceRepairedAndItsReaderResumes() throws {
        let database = try BundleDatabase.fresh()
        let connection = try database.connect()
        try connection.execute(
            """
            CREATE SCHEMA app;
            CREATE TABLE app.notes (id bigint PRIMARY KEY, body text);
            SELECT feed.watch('app.notes');
            INSERT INTO app.notes VALUES (1, 'before the dump');
            SELECT feed.subscribe('reader', 'app.notes');
            """)
        let cursor = try #require(try connection.scalar("SELECT feed.current_cursor()"))
        let restored = try database.restoredCopy()
        let copy = try restored.connect()
        #expect(throws: PostgresError.self, "the capture generated for the old OID refuses the restored table") {
            try copy.execute("INSERT INTO app.notes VALUES (2, 'refused')")
        }
        #expect(try copy.scalar("SELECT feed.repair_after_restore()") == "1")
        #expect(try copy.scalar("SELECT feed.repair_after_restore()") == "0", "a second repair finds nothing to do")
        try copy.execute("INSERT INTO app.notes VALUES (2, 'after the restore')")
        #expect(try copy.scalar("SELECT string_agg(operation || ' ' || (row_data ->> 'id'), ',') FROM feed.changes_for('reader', '\(cursor)')") == "INSERT 2")
        #expect(try copy.scalar("SELECT count(*) FROM feed.commits WHERE xid >= '9223372036854775808'::xid8") == "1",
            "the restored commit moved where no transaction id reaches")
        #expect(try copy.scalar("SELECT count(DISTINCT table_id) FROM feed.change_log") == "1")
        #expect(try copy.scalar("SELECT count(*) FROM pg_proc WHERE pronamespace = 'feed'::regnamespace AND proname ~ '^capture_[0-9]+_'") == "3",
            "no capture function of the old OID is left")
    }
}
