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
            try prepareRounds(connection)
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

    /// The end of the log and the changes after `live` for every group held (and after the
    /// catch-up start, for the lagging subscriptions' groups), in one statement: one snapshot, as
    /// the functions it calls are stable, and one round trip.
    private func read(_ connection: PGConnection, live: FeedCursor, catchUp: (from: FeedCursor, groups: [GatewayHub.Group], subscriptions: [GatewayHub.Subscription])?)
        throws -> (head: FeedCursor, live: [GatewayHub.Delivery], catchUp: [GatewayHub.Delivery])
    {
        let liveGroups = hub.groups
        var parameters = Self.pageParameters(after: live, groups: liveGroups) + [String(pageSize)]
        if let catchUp { parameters += Self.pageParameters(after: catchUp.from, groups: catchUp.groups) }
        let result = try connection.query(prepared: catchUp == nil ? "fan_out_live" : "fan_out_catch_up", parameters)
        guard let text = result.rows.first?.first ?? nil, let head = FeedCursor(text) else {
            throw GatewayError(code: "XX000", message: "a fan-out round answered no end of the log")
        }
        let rows = result.rows.filter { $0[1] != nil }
        return (head, deliveries(rows.filter { $0[1] == "f" }, groups: liveGroups),
                catchUp.map { deliveries(rows.filter { $0[1] == "t" }, groups: $0.groups) } ?? [])
    }

    private static func pageParameters(after: FeedCursor, groups: [GatewayHub.Group]) -> [String?] {
        [after.description, PGConnection.arrayParameter(groups.map { String($0.tableID) }),
         PGConnection.arrayParameter(groups.map(\.filters)), PGConnection.arrayParameter(groups.map(\.userID))]
    }

    /// The two statements of a round, prepared once per connection: planning them cost as much as
    /// running them. `$1`–`$4` are the live page (after, then the groups' tables, filters and
    /// users), `$5` the page size, and `$6`–`$9` the catch-up page.
    private func prepareRounds(_ connection: PGConnection) throws {
        let page = { (first: Int, isCatchUp: Bool) in
            "SELECT \(isCatchUp) AS catch_up, * FROM feed.deliveries($\(first), $\(first + 1)::oid[], $\(first + 2)::jsonb[], $\(first + 3)::text[], $5::integer)"
        }
        for (name, pages) in [("fan_out_live", [page(1, false)]), ("fan_out_catch_up", [page(1, false), page(6, true)])] {
            try connection.prepare(
                name,
                """
                SELECT h.head, d.catch_up, d.change_cursor, array_to_string(d.groups, ' '),
                       (extract(epoch FROM d.committed_at) * 1000000)::bigint,
                       (jsonb_build_object('type', 'db_change', 'table', d.table_name, 'operation', d.operation, 'user_id', d.user_id,
                                           'record_id', CASE WHEN (SELECT count(*) FROM jsonb_object_keys(d.row_key)) = 1
                                                             THEN (SELECT e.value FROM jsonb_each(d.row_key) e) ELSE d.row_key END,
                                           'data', d.row_data,
                                           'timestamp', to_char(d.committed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                                           'cursor', d.change_cursor)
                        || CASE WHEN d.old_data IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('old', d.old_data) END)::text
                FROM (SELECT feed.current_cursor() AS head) h
                LEFT JOIN LATERAL (\(pages.joined(separator: "\nUNION ALL\n"))) d ON true
                ORDER BY d.catch_up, d.commit_seq, d.change_id
                """)
        }
    }

    /// One page's rows; `groups` are the groups it was asked for, in order.
    private func deliveries(_ rows: [[String?]], groups: [GatewayHub.Group]) -> [GatewayHub.Delivery] {
        // Changes that match the same groups carry the same list: look each list up once.
        var lists: [String: [GatewayHub.Group]] = [:]
        return rows.compactMap { row in
            guard let cursor = row[2].flatMap(FeedCursor.init), let frame = row[5] else { return nil }
            let listed = row[3] ?? ""
            let matched = lists[listed] ?? {
                let positions = listed.split(separator: " ").compactMap { Int($0) }.filter { $0 >= 1 && $0 <= groups.count }
                let matched = positions.map { groups[$0 - 1] }
                lists[listed] = matched
                return matched
            }()
            return GatewayHub.Delivery(cursor: cursor, groups: matched, frame: frame, committedAtMicroseconds: row[4].flatMap { Int64($0) } ?? 0)
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

    private func withReconnects(_ name: String, connected: @escaping (Bool) -> Void, _ body: (PGConnection) throws -> Void) {
        Reconnecting(
            conninfo: conninfo, name: "gateway \(name)", metrics: metrics, logger: logger, maximumDelay: maximumReconnectDelay,
            isStopping: { self.isStopping }
        ).run(connected: connected, body)
    }
}
