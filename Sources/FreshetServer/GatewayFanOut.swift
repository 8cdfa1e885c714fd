import Foundation
import Freshet
import Logging

/// The gateway's two database threads: one connection LISTENs on the watched tables' channels and
/// only wakes the other, which reads each new stretch of the log in one query that names the
/// clients every change is for (`feed.deliveries()`), and hands the changes to the hub.
///
/// A lost connection costs nothing but time: the live position moves only after a round's
/// changes are queued, so the next round, on a new connection, reads from where the last one ended.
final class GatewayFanOut: @unchecked Sendable {
    private let conninfo: String
    private let hub: GatewayHub
    private let metrics: ServerMetrics
    private let logger: Logger
    private let pageSize: Int
    private let pollInterval: Double
    private let maximumReconnectDelay: Duration
    private let condition = NSCondition()
    private var woken = false
    private var stopping = false
    private var state = (fanOutConnected: false, listenerConnected: false)
    private let finished = DispatchGroup()

    init(conninfo: String, hub: GatewayHub, metrics: ServerMetrics, logger: Logger, pageSize: Int, pollInterval: Double,
         maximumReconnectDelay: Duration) {
        self.conninfo = conninfo
        self.hub = hub
        self.metrics = metrics
        self.logger = logger
        self.pageSize = pageSize
        self.pollInterval = pollInterval
        self.maximumReconnectDelay = maximumReconnectDelay
    }

    /// Whether both connections are up.
    var isConnected: Bool { condition.withLock { state.fanOutConnected && state.listenerConnected } }

    func start() {
        for (name, isFanOut) in [("gateway-fan-out", true), ("gateway-listener", false)] {
            finished.enter()
            let thread = Thread { [self] in
                if isFanOut { fanOut() } else { listen() }
                finished.leave()
            }
            thread.name = name
            thread.start()
        }
    }

    /// Stops both threads and waits for them.
    func stop() async {
        condition.withLock {
            stopping = true
            condition.broadcast()
        }
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in finished.notify(queue: .global()) { done.resume() } }
    }

    /// Asks for a round now: a change was committed, or a subscription waits to catch up.
    func wake() {
        condition.withLock {
            woken = true
            condition.signal()
        }
    }

    private var isStopping: Bool { condition.withLock { stopping } }

    private func fanOut() {
        withReconnects("fan-out", connected: { up in self.condition.withLock { self.state.fanOutConnected = up } }) { connection in
            while !isStopping {
                // Rounds follow each other while a page comes back full or a subscription lags.
                while try round(connection), !isStopping {}
                condition.withLock {
                    if !woken && !stopping { _ = condition.wait(until: Date(timeIntervalSinceNow: pollInterval)) }
                    woken = false
                }
            }
        }
    }

    /// One round in one snapshot: the live stretch and, when a subscription lags, its catch-up page,
    /// sent as one script so the round costs one round trip. Returns whether another round has work at once.
    private func round(_ connection: PGConnection) throws -> Bool {
        if hub.livePosition == nil {
            // The first round starts live delivery at the end of the log as it is now.
            guard let head = try connection.scalar("SELECT feed.current_cursor()").flatMap(FeedCursor.init) else {
                throw GatewayError(code: "XX000", message: "feed.current_cursor() returned no cursor")
            }
            hub.startLive(at: head)
        }
        let from = hub.livePosition!
        let lagging = hub.laggingStart()
        var caughtUp = lagging?.subscriptions ?? []
        let outcome: (head: FeedCursor, live: [GatewayHub.Delivery], catchUp: [GatewayHub.Delivery])
        do {
            outcome = try read(connection, live: from, catchUp: lagging)
        } catch let failure {
            // Which part failed: a catch-up cursor pruned since its subscribe fails only its own
            // subscriptions; a live position past the end of the log means the database was replaced.
            do {
                outcome = try read(connection, live: from, catchUp: nil)
            } catch let error as PostgresError where error.sqlState == "22023" {
                logger.error("gateway: the live position \(from) is past the end of the log (was the database replaced?); delivering from its end")
                hub.restartLive()
                return false
            }
            if let lagging, let error = failure as? PostgresError {
                caughtUp = []
                hub.fail(lagging.subscriptions) { subscription in
                    GatewayProtocol.error(code: error.sqlState, message: error.message, reference: ["type": "subscribe", "client_id": subscription.clientID])
                }
            }
        }
        let (head, live, catchUp) = outcome
        let liveEnd = live.count == pageSize ? live.last!.cursor : head
        let catchUpEnd = catchUp.count == pageSize ? catchUp.last!.cursor : nil
        let (sent, overflowed) = hub.dispatch(
            live: live, liveEnd: liveEnd, catchUp: catchUp, caughtUp: caughtUp, catchUpEnd: catchUpEnd, head: head,
            now: Date().timeIntervalSince1970)
        metrics.messagesSent.increment(by: Int64(sent))
        metrics.clientsDroppedSlow.increment(by: Int64(overflowed.count))
        return live.count == pageSize || hub.hasLagging
    }

    /// The end of the log and the changes after `live` (and after the catch-up start, for the
    /// lagging clients), all in one snapshot.
    private func read(_ connection: PGConnection, live: FeedCursor, catchUp: (from: FeedCursor, databaseClientIDs: [String], subscriptions: [GatewayHub.Subscription])?)
        throws -> (head: FeedCursor, live: [GatewayHub.Delivery], catchUp: [GatewayHub.Delivery])
    {
        var script = ["BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY", "SELECT feed.current_cursor()", deliveriesSQL(after: live, clients: nil)]
        if let catchUp { script.append(deliveriesSQL(after: catchUp.from, clients: catchUp.databaseClientIDs)) }
        script.append("COMMIT")
        let results: [PGConnection.Result]
        do {
            results = try connection.execute(script.joined(separator: ";\n"))
        } catch {
            if connection.isInTransaction { _ = try? connection.execute("ROLLBACK") }
            throw error
        }
        guard results.count == script.count, let text = results[1].rows.first?.first ?? nil, let head = FeedCursor(text) else {
            throw GatewayError(code: "XX000", message: "a fan-out round answered \(results.count) results")
        }
        return (head, deliveries(results[2]), catchUp == nil ? [] : deliveries(results[3]))
    }

    private func deliveriesSQL(after: FeedCursor, clients: [String]?) -> String {
        let only = clients.map { "string_to_array('\($0.joined(separator: " ").replacingOccurrences(of: "'", with: "''"))', ' ')" } ?? "NULL"
        return """
            SELECT d.change_cursor, d.table_id, array_to_string(d.client_ids, ' '),
                   (extract(epoch FROM d.committed_at) * 1000000)::bigint,
                   (jsonb_build_object('type', 'db_change', 'table', d.table_name, 'operation', d.operation, 'user_id', d.user_id,
                                       'record_id', CASE WHEN (SELECT count(*) FROM jsonb_object_keys(d.row_key)) = 1
                                                         THEN (SELECT e.value FROM jsonb_each(d.row_key) e) ELSE d.row_key END,
                                       'data', d.row_data,
                                       'timestamp', to_char(d.committed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                                       'cursor', d.change_cursor)
                    || CASE WHEN d.old_data IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('old', d.old_data) END)::text
            FROM feed.deliveries('\(after)', \(pageSize), \(only)) d
            """
    }

    private func deliveries(_ result: PGConnection.Result) -> [GatewayHub.Delivery] {
        // Changes that match the same subscriptions carry the same list: split each list once.
        var lists: [String: [String]] = [:]
        return result.rows.compactMap { row in
            guard let cursor = row[0].flatMap(FeedCursor.init), let table = row[1].flatMap({ UInt32($0) }), let frame = row[4] else { return nil }
            let listed = row[2] ?? ""
            let clients = lists[listed] ?? {
                let split = listed.utf8.split(separator: UInt8(ascii: " ")).map { String(decoding: $0, as: UTF8.self) }
                lists[listed] = split
                return split
            }()
            return GatewayHub.Delivery(
                cursor: cursor, tableID: table, databaseClientIDs: clients, frame: frame, committedAtMicroseconds: row[3].flatMap { Int64($0) } ?? 0)
        }
    }

    private func listen() {
        withReconnects("listener", connected: { up in self.condition.withLock { self.state.listenerConnected = up } }) { connection in
            var channels = hub.allChannels
            _ = hub.takeChannelsToListen()
            // Notifications sent while no one listened are lost: a round reads what they announced.
            wake()
            while !isStopping {
                for channel in channels {
                    _ = try connection.execute("LISTEN \"\(channel.replacingOccurrences(of: "\"", with: "\"\""))\"")
                }
                if try connection.waitForNotification(timeout: 0.2) != nil {
                    while try connection.waitForNotification(timeout: 0) != nil {}
                    wake()
                }
                channels = hub.takeChannelsToListen()
            }
        }
    }

    /// Runs `body` on a connection, opening it again with backoff whenever it fails, until stopped.
    private func withReconnects(_ name: String, connected: @escaping (Bool) -> Void, _ body: (PGConnection) throws -> Void) {
        var delay = Duration.milliseconds(100)
        var isReconnect = false
        while !isStopping {
            do {
                let connection = try PGConnection(conninfo: conninfo)
                if isReconnect { metrics.databaseReconnects.increment() }
                isReconnect = true
                delay = .milliseconds(100)
                connected(true)
                defer { connected(false) }
                try body(connection)
            } catch {
                let reason = (error as? ConnectionError)?.summary ?? "\(error)"
                logger.warning("gateway \(name): \(reason); connecting again in \(delay)")
                let deadline = ContinuousClock.now.advanced(by: delay)
                while !isStopping && ContinuousClock.now < deadline { usleep(20_000) }
                delay = min(delay * 2, maximumReconnectDelay)
            }
        }
    }
}
