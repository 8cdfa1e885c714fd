import Foundation
import Testing

@testable import Freshet

/// The event ledger under concurrency and across its rollback to materialized views.
@Suite struct LedgerTests {
    static let aggregates = [
        "atom", "triple", "position", "vault", "term", "triple_vault", "triple_term", "predicate_object", "subject_predicate",
    ]

    /// Each aggregate's row count and a digest of its rows, for comparing two databases or two versions.
    static func digests(_ connection: PGConnection) throws -> [String: String] {
        var digests: [String: String] = [:]
        for name in aggregates {
            digests[name] = try connection.scalar(
                "SELECT count(*) || ' rows ' || md5(coalesce(string_agg(x::text, ',' ORDER BY x::text), '')) FROM ledger.\(name) x")
        }
        return digests
    }

    static func drain(_ connection: PGConnection) throws {
        while try connection.scalar("SELECT ledger.process_analytics_queue(100000) ->> 'entries'") != "0" {}
    }

    static func differences(_ connection: PGConnection, tier: String? = nil) throws -> Int {
        let filter = tier.map { " WHERE tier = '\($0)'" } ?? ""
        return Int(try connection.scalar("SELECT count(*) FROM ledger.verify()\(filter)") ?? "") ?? -1
    }

    static func migrator(_ database: TestDatabase) throws -> Migrator {
        Migrator(
            connection: try database.connect(), directory: try MigrationDirectory(path: BundleDatabase.migrationsPath),
            reporter: database.output.reporter, options: MigratorOptions())
    }

    @Test func eightSessionsIngestingShuffledStreamsMatchAnInOrderSingleSessionRun() throws {
        let stream = LedgerStream(seed: 20_261_123, atoms: 40, triples: 30, accounts: 150, events: 6_000)
        let concurrent = try BundleDatabase.fresh()
        let inOrder = try BundleDatabase.fresh()

        // Drained after the creations, so a later change that fails to queue its analytics shows.
        try stream.insert(stream.creations, into: inOrder.connect(), maximumBatch: 25)
        try Self.drain(inOrder.connect())
        try stream.insert(stream.moves.sorted(), into: inOrder.connect(), maximumBatch: 1)

        try stream.insert(stream.creations, into: concurrent.connect(), maximumBatch: 25)
        try Self.drain(concurrent.connect())
        let tally = RefreshQueueTests.Tally()
        let stop = RefreshQueueTests.Flag()
        let conninfo = concurrent.conninfo
        var generator = SplitMix64(seed: 7)
        let shuffled = stream.moves.shuffled(using: &generator)
        let slices = (0..<8).map { index in stride(from: index, to: shuffled.count, by: 8).map { shuffled[$0] } }
        let writers = slices.enumerated().map { index, slice in
            BackgroundWork {
                let connection = try PGConnection(conninfo: conninfo)
                var random = SplitMix64(seed: UInt64(index))
                var position = 0
                while position < slice.count {
                    // Half the statements carry one event, the rest up to 40, mixing event types.
                    let size = Bool.random(using: &random) ? 1 : Int.random(in: 2...40, using: &random)
                    let chunk = Array(slice[position..<min(position + size, slice.count)])
                    position += chunk.count
                    do {
                        try stream.insert(chunk, into: connection, maximumBatch: chunk.count)
                        tally.add("statements")
                        if Int.random(in: 0..<20, using: &random) == 0 {
                            try stream.insert(chunk, into: connection, maximumBatch: chunk.count, replay: true)
                            tally.add("replays")
                        }
                    } catch {
                        tally.error("writer \(index): \(error)")
                    }
                }
            }
        }
        let observer = BackgroundWork {
            let connection = try PGConnection(conninfo: conninfo)
            while !stop.isRaised {
                do {
                    let strong = try Self.differences(connection, tier: "strong")
                    if strong != 0 { tally.error("verify() found \(strong) differences in the strong aggregates mid-run") }
                    tally.add("verifications")
                    _ = try connection.scalar("SELECT ledger.process_analytics_queue(200)")
                    tally.add("drains")
                } catch {
                    tally.error("observer: \(error)")
                }
            }
        }
        for writer in writers { try writer.join() }
        stop.raise()
        try observer.join()

        #expect(tally.errors.isEmpty, "errors surfaced (a deadlock or lost update would be here): \(tally.errors.prefix(5))")
        #expect(tally.count("verifications") > 0 && tally.count("replays") > 0)
        let connection = try concurrent.connect()
        let reference = try inOrder.connect()
        #expect(try connection.scalar("SELECT count(*) FROM ledger.deposited_events") == String(stream.count("deposited_events")))
        #expect(try Self.differences(connection, tier: "strong") == 0, "the strong aggregates match their definitions")
        try Self.drain(connection)
        try Self.drain(reference)
        #expect(try Self.differences(connection) == 0, "every aggregate matches its definition once drained")
        #expect(try Self.differences(reference) == 0)
        let got = try Self.digests(connection)
        let want = try Self.digests(reference)
        for name in Self.aggregates {
            #expect(got[name] == want[name], "\(name): shuffled across 8 sessions \(got[name] ?? "-"), in order \(want[name] ?? "-")")
        }
        #expect(try connection.scalar("SELECT position_count > 20 FROM ledger.vault WHERE term_id = 'A0' AND curve_id = 1") == "t",
            "the hot vault was hot")
    }

    /// A watched table of `rows` accounts with one subscription: what the feed must keep through a ledger rollback.
    static func watchAccounts(_ connection: PGConnection, rows: Int) throws {
        try connection.execute(
            """
            CREATE SCHEMA app;
            CREATE TABLE app.accounts (id bigint PRIMARY KEY, owner text NOT NULL);
            SELECT feed.watch('app.accounts');
            INSERT INTO app.accounts SELECT n, 'user' || n FROM generate_series(1, \(rows)) n;
            SELECT feed.subscribe('client-1', 'app.accounts');
            """)
    }

    /// The feed as a reader sees it, byte for byte: the log, the subscriptions, the watched tables
    /// and the capture triggers' definitions.
    static func feedDigest(_ connection: PGConnection) throws -> String {
        try connection.scalar(
            """
            SELECT md5(concat_ws('|',
                (SELECT string_agg(l::text, ',' ORDER BY l.id) FROM feed.change_log l),
                (SELECT string_agg(s::text, ',' ORDER BY s::text) FROM feed.subscriptions s),
                (SELECT string_agg(w::text, ',' ORDER BY w::text) FROM feed.watched_tables w),
                (SELECT string_agg(pg_get_triggerdef(t.oid), ',' ORDER BY t.tgname) FROM pg_trigger t
                 WHERE t.tgrelid = 'app.accounts'::regclass AND NOT t.tgisinternal)))
            """) ?? ""
    }

    /// Rolling the ledger back as users do, `down --module ledger --to 6`, leaves the feed alone.
    @Test func rollingBackToMaterializedViewsAndForwardAgainLosesNothing() throws {
        let stream = LedgerStream(seed: 99, atoms: 30, triples: 20, accounts: 80, events: 3_000)
        let database = try BundleDatabase.fresh()
        let connection = try database.connect()
        let moves = stream.moves.sorted()
        try Self.watchAccounts(connection, rows: 50)
        try stream.insert(stream.creations, into: connection, maximumBatch: 25)
        try stream.insert(Array(moves.prefix(2_000)), into: connection, maximumBatch: 17)
        try Self.drain(connection)
        let tables = try Self.digests(connection)
        let feed = try Self.feedDigest(connection)
        #expect(try connection.scalar("SELECT count(*) FROM feed.change_log") == "50")

        let rolledBack = try Self.migrator(database).down(.version(6), module: "ledger")
        #expect(rolledBack.map(\.version) == [19, 12, 7], "only the ledger's steps above 6")
        #expect(try Self.feedDigest(connection) == feed, "the feed's log, subscriptions and triggers are untouched")
        try connection.execute("INSERT INTO app.accounts VALUES (51, 'after the rollback')")
        #expect(try connection.scalar("SELECT count(*) FROM feed.change_log") == "51", "writes are still captured")
        #expect(try connection.scalar("SELECT string_agg(DISTINCT relkind::text, '') FROM pg_class WHERE relnamespace = 'ledger'::regnamespace AND relname IN ('atom', 'position', 'vault', 'term', 'triple_term')") == "m")
        #expect(try Self.digests(connection) == tables, "the materialized views hold exactly what the tables held")
        #expect(try Self.differences(connection) == 0)

        try stream.insert(Array(moves.dropFirst(2_000)), into: connection, maximumBatch: 9)
        #expect(try Self.differences(connection, tier: "strong") > 0, "on version 1 the views go stale until refreshed")
        #expect(try connection.scalar("SELECT count(*) FROM ledger.refresh_all_views() WHERE refreshed_concurrently") == "9")
        #expect(try Self.differences(connection) == 0)
        let views = try Self.digests(connection)
        #expect(views != tables)

        try Self.migrator(database).up()
        #expect(try connection.scalar("SELECT relkind::text FROM pg_class WHERE oid = 'ledger.position'::regclass") == "r")
        #expect(try Self.digests(connection) == views, "the backfilled tables equal the refreshed views")
        #expect(try Self.differences(connection) == 0)

        try connection.execute("INSERT INTO ledger.deposited_events VALUES (999999, 1, 'tx', 'payer', 'late', 'A1', 1, 5, 5, 5, 5)")
        #expect(try connection.scalar("SELECT shares FROM ledger.position WHERE account_id = 'late'") == "5", "the triggers work again")
        #expect(try Self.differences(connection, tier: "strong") == 0)
    }

    @Test func aRollbackThatWouldChangeAnAggregateIsRefusedAndChangesNothing() throws {
        let stream = LedgerStream(seed: 5, atoms: 10, triples: 5, accounts: 20, events: 300)
        let database = try BundleDatabase.fresh()
        let connection = try database.connect()
        try stream.insert(stream.creations, into: connection, maximumBatch: 25)
        try stream.insert(stream.moves.sorted(), into: connection, maximumBatch: 10)
        try Self.drain(connection)
        try connection.execute("UPDATE ledger.position SET total_redeem_assets = total_redeem_assets + 1 WHERE (account_id, term_id, curve_id) = (SELECT account_id, term_id, curve_id FROM ledger.position ORDER BY 1, 2, 3 LIMIT 1)")
        let corrupted = try Self.digests(connection)

        #expect {
            try Self.migrator(database).down(.version(6), module: "ledger")
        } throws: { error in
            "\(error)".contains("aggregate tables differ from their definitions") && "\(error)".contains("ledger/0007_ledger_triggers.down.sql")
        }
        #expect(try connection.scalar("SELECT max(version) FROM migrate.history WHERE module = 'ledger'") == "7", "still on the triggers")
        #expect(try connection.scalar("SELECT max(version) FROM migrate.history") == "23", "and the other modules untouched")
        #expect(try connection.scalar("SELECT relkind::text FROM pg_class WHERE oid = 'ledger.position'::regclass") == "r")
        #expect(try Self.digests(connection) == corrupted, "the refused rollback kept every row as it was")
        #expect(try Self.differences(connection) == 2, "verify() names the corrupted row both ways")
    }

    @Test func aDepositIntoAHeldPositionDoesNotWaitForAWriterHoldingTheHotVault() throws {
        let database = try BundleDatabase.fresh()
        try database.connect().execute(
            """
            INSERT INTO ledger.atom_created_events VALUES (1, 1, 'tx', 'hot', 'creator', 'hot');
            INSERT INTO ledger.deposited_events VALUES (2, 1, 'tx', 'payer', 'holder', 'hot', 1, 10, 10, 10, 10);
            """)
        let writer = try database.connect()
        try writer.execute("BEGIN")
        try writer.execute("INSERT INTO ledger.share_price_changed_events VALUES (3, 1, 'tx', 'hot', 1, 1000000000000000000, 5, 5)")
        // The writer now holds the hot vault's and term's rows until it commits.
        let other = try database.connect()
        try other.execute("SET lock_timeout = '300ms'")
        try other.execute("INSERT INTO ledger.deposited_events VALUES (4, 1, 'tx', 'payer', 'holder', 'hot', 1, 10, 10, 10, 20)")
        #expect(try other.scalar("SELECT shares FROM ledger.position WHERE account_id = 'holder'") == "20",
            "a deposit into a position that holds shares went through without touching the vault")
        #expect {
            try other.execute("INSERT INTO ledger.deposited_events VALUES (5, 1, 'tx', 'payer', 'newcomer', 'hot', 1, 10, 10, 10, 10)")
        } throws: { error in
            (error as? PostgresError)?.sqlState == "55P03"
        }
        try writer.execute("COMMIT")
        try other.execute("INSERT INTO ledger.deposited_events VALUES (5, 1, 'tx', 'payer', 'newcomer', 'hot', 1, 10, 10, 10, 10)")
        #expect(try other.scalar("SELECT position_count FROM ledger.vault WHERE term_id = 'hot'") == "2",
            "a new holder changes the vault, so it waited for the writer")
        #expect(try Self.differences(other, tier: "strong") == 0)
    }

    @Test func theAnalyticsDrainIsSingleFlight() throws {
        let database = try BundleDatabase.fresh()
        let holder = try database.connect()
        let other = try database.connect()
        try holder.execute("BEGIN")
        #expect(try holder.scalar("SELECT ledger.process_analytics_queue(10) ->> 'status'") == "ok")
        #expect(try other.scalar("SELECT ledger.process_analytics_queue(10) ->> 'status'") == "skipped")
        try holder.execute("COMMIT")
        #expect(try other.scalar("SELECT ledger.process_analytics_queue(10) ->> 'status'") == "ok")
    }
}

/// A reproducible random stream of ledger events: creations first, then deposits, redeems and
/// price changes over many accounts, terms and curves, a third of them into one hot vault.
struct LedgerStream {
    struct Event: Comparable {
        var table: String
        var block: Int
        var log: Int
        var values: String

        static func < (lhs: Event, rhs: Event) -> Bool { (lhs.block, lhs.log) < (rhs.block, rhs.log) }
    }

    var creations: [Event] = []
    var moves: [Event] = []

    init(seed: UInt64, atoms: Int, triples: Int, accounts: Int, events: Int) {
        var random = SplitMix64(seed: seed)
        var log = 0
        func next() -> Int {
            log += 1
            return log
        }
        for index in 0..<atoms {
            let n = next()
            creations.append(Event(table: "atom_created_events", block: 1, log: n, values: "(1, \(n), 'tx', 'A\(index)', 'creator', 'atom \(index)')"))
        }
        var terms = (0..<atoms).map { "A\($0)" }
        for index in 0..<triples {
            let n = next()
            let (s, p, o) = (Int.random(in: 0..<atoms, using: &random), Int.random(in: 0..<5, using: &random), Int.random(in: 0..<atoms, using: &random))
            creations.append(Event(
                table: "triple_created_events", block: 2, log: n,
                values: "(2, \(n), 'tx', 'T\(index)', 'C\(index)', 'creator', 'A\(s)', 'A\(p)', 'A\(o)')"))
            terms += ["T\(index)", "C\(index)"]
        }
        // Three terms of their own for the streams that once left the analytics diverged for good:
        // a vault with zero totals; shares that change while assets and market cap stay; a vault
        // with zero totals on a second curve, whose price then changes.
        let reserved = ["T\(triples - 1)", "C\(triples - 2)", "T\(triples - 3)"]
        terms.removeAll { term in (1...3).contains { ["T\(triples - $0)", "C\(triples - $0)"].contains(term) } }
        for (block, term, curve, values) in [
            (50, reserved[0], 1, "0, 0, 0"), (60, reserved[1], 1, "0, 500, 1000"), (70, reserved[1], 1, "0, 500, 3000"),
            (80, reserved[2], 2, "0, 0, 0"), (90, reserved[2], 2, "2000000000000000000, 0, 0"),
        ] {
            let n = next()
            moves.append(Event(
                table: "share_price_changed_events", block: block, log: n, values: "(\(block), \(n), 'tx', '\(term)', \(curve), \(values))"))
        }
        for _ in 0..<events {
            let n = next()
            let block = Int.random(in: 10...2_000, using: &random)
            let hot = Int.random(in: 0..<3, using: &random) == 0
            let term = hot ? "A0" : terms.randomElement(using: &random)!
            let curve = hot ? 1 : Int.random(in: 1...2, using: &random)
            let account = "acct\(Int.random(in: 0..<accounts, using: &random))"
            let amount = Int.random(in: 1...1_000_000, using: &random)
            let total = Int.random(in: 0..<4, using: &random) == 0 ? 0 : Int.random(in: 1...1_000_000, using: &random)
            switch Int.random(in: 0..<10, using: &random) {
            case 0..<6:
                moves.append(Event(
                    table: "deposited_events", block: block, log: n,
                    values: "(\(block), \(n), 'tx', 'payer', '\(account)', '\(term)', \(curve), \(amount + 7), \(amount), \(amount / 3), \(total))"))
            case 6..<8:
                moves.append(Event(
                    table: "redeemed_events", block: block, log: n,
                    values: "(\(block), \(n), 'tx', '\(account)', 'payee', '\(term)', \(curve), \(amount / 5), \(total), \(amount), 3)"))
            default:
                let price = "\(Int.random(in: 1...3, using: &random))\(String(repeating: "0", count: 18))"
                moves.append(Event(
                    table: "share_price_changed_events", block: block, log: n,
                    values: "(\(block), \(n), 'tx', '\(term)', \(curve), \(price), \(amount), \(total))"))
            }
        }
    }

    func count(_ table: String) -> Int { moves.filter { $0.table == table }.count + creations.filter { $0.table == table }.count }

    /// Inserts the events in their order, consecutive events of one table in statements of at most `maximumBatch`.
    func insert(_ events: [Event], into connection: PGConnection, maximumBatch: Int, replay: Bool = false) throws {
        var start = 0
        while start < events.count {
            var end = start + 1
            while end < events.count, end - start < maximumBatch, events[end].table == events[start].table { end += 1 }
            let values = events[start..<end].map(\.values).joined(separator: ", ")
            let conflict = replay ? " ON CONFLICT (block_number, log_index) DO NOTHING" : ""
            try connection.execute("INSERT INTO ledger.\(events[start].table) VALUES \(values)\(conflict)")
            start = end
        }
    }
}

/// A small seedable generator, so a failing stream can be replayed.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
