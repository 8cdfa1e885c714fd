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

    /// One round in one snapshot: the live stretch and, when a subscription lags, its catch-up page.
    /// Returns whether another round has work at once.
    private func round(_ connection: PGConnection) throws -> Bool {
        let lagging = hub.laggingStart()
        _ = try connection.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        do {
            guard let headText = try connection.scalar("SELECT feed.current_cursor()"), let head = FeedCursor(headText) else {
                throw GatewayError(code: "XX000", message: "feed.current_cursor() returned no cursor")
            }
            hub.startLive(at: head)
            let from = hub.livePosition ?? head
            let live = try deliveries(connection, after: from, clients: nil)
            var catchUp: [GatewayHub.Delivery] = []
            var caughtUp = lagging?.subscriptions ?? []
            if let lagging {
                // A cursor pruned since its subscribe fails only its own subscriptions.
                _ = try connection.execute("SAVEPOINT catch_up")
                do {
                    catchUp = try deliveries(connection, after: lagging.from, clients: lagging.databaseClientIDs)
                } catch let error as PostgresError {
                    _ = try connection.execute("ROLLBACK TO SAVEPOINT catch_up")
                    caughtUp = []
                    hub.fail(lagging.subscriptions) { subscription in
                        GatewayProtocol.error(code: error.sqlState, message: error.message, reference: ["type": "subscribe", "client_id": subscription.clientID])
                    }
                }
            }
            _ = try connection.execute("COMMIT")
            let liveEnd = live.count == pageSize ? live.last!.cursor : head
            let catchUpEnd = catchUp.count == pageSize ? catchUp.last!.cursor : nil
            let (sent, overflowed) = hub.dispatch(
                live: live, liveEnd: liveEnd, catchUp: catchUp, caughtUp: caughtUp, catchUpEnd: catchUpEnd,
                head: head, now: Date().timeIntervalSince1970)
            metrics.messagesSent.increment(by: Int64(sent))
            metrics.clientsDroppedSlow.increment(by: Int64(overflowed.count))
            let counts = hub.counts
            metrics.deliveryLag.set(counts.lastLagSeconds)
            return live.count == pageSize || counts.lagging > 0
        } catch {
            if connection.isInTransaction { _ = try? connection.execute("ROLLBACK") }
            throw error
        }
    }

    private func deliveries(_ connection: PGConnection, after: FeedCursor, clients: [String]?) throws -> [GatewayHub.Delivery] {
        let result = try connection.query(
            """
            SELECT d.change_cursor, d.table_id, array_to_string(d.client_ids, ' '),
                   (extract(epoch FROM d.committed_at) * 1000000)::bigint,
                   (jsonb_build_object('type', 'db_change', 'table', d.table_name, 'operation', d.operation, 'user_id', d.user_id,
                                       'record_id', CASE WHEN (SELECT count(*) FROM jsonb_object_keys(d.row_key)) = 1
                                                         THEN (SELECT e.value FROM jsonb_each(d.row_key) e) ELSE d.row_key END,
                                       'data', d.row_data,
                                       'timestamp', to_char(d.committed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                                       'cursor', d.change_cursor)
                    || CASE WHEN d.old_data IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('old', d.old_data) END)::text
            FROM feed.deliveries($1, $2::integer, string_to_array($3, ' ')) d
            """, [after.description, String(pageSize), clients?.joined(separator: " ")])
        return result.rows.compactMap { row in
            guard let cursor = row[0].flatMap(FeedCursor.init), let table = row[1].flatMap({ UInt32($0) }), let frame = row[4] else { return nil }
            return GatewayHub.Delivery(
                cursor: cursor, tableID: table, databaseClientIDs: (row[2] ?? "").split(separator: " ").map(String.init), frame: frame,
                committedAtMicroseconds: row[3].flatMap { Int64($0) } ?? 0)
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
