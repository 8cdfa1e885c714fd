import Foundation
import Freshet
import Hummingbird
import HummingbirdWebSocket
import JWTKit
import Logging
import ServiceLifecycle

/// The WebSocket gateway (seed 002, `/ws/db_subscriptions`): clients subscribe to watched tables
/// with filters and a cursor, and receive every change after it exactly once, in commit order.
///
/// Authorisation stays in the database: the gateway connects as a feed service role and subscribes
/// for each token's user through `feed.subscribe()`, so `feed.deliveries()` gives a user's
/// subscriptions that user's rows only, whatever its filters say. Acknowledgements are written in
/// batches, and heartbeats keep connected clients' subscriptions active.
public final class Gateway: Service, @unchecked Sendable {
    private let configuration: ServerConfiguration
    private let metrics: ServerMetrics
    private let logger: Logger
    private let hub = GatewayHub()
    private let fanOut: GatewayFanOut
    private let pool: DatabasePool
    private let keys = JWTKeyCollection()
    private let lock = NSLock()
    private var acknowledgements: [String: FeedCursor] = [:]
    private var gone: Set<String> = []
    private var keysAdded = false

    public init(configuration: ServerConfiguration, metrics: ServerMetrics, logger: Logger) {
        self.configuration = configuration
        self.metrics = metrics
        self.logger = logger
        fanOut = GatewayFanOut(
            conninfo: configuration.serverConninfo, hub: hub, metrics: metrics, logger: logger, pageSize: configuration.gateway.pageSize,
            pollInterval: configuration.gateway.pollInterval, maximumReconnectDelay: configuration.maximumReconnectDelay)
        pool = DatabasePool(conninfo: configuration.serverConninfo, size: configuration.gateway.connections, name: "gateway-pool", metrics: metrics)
    }

    /// Clients, subscriptions, how late the last change was queued, and whether the database side is up.
    public struct State: Sendable {
        public var clients: Int
        public var subscriptions: Int
        public var lagging: Int
        public var deliveryLagSeconds: Double
        public var connected: Bool
    }

    public var state: State {
        let counts = hub.counts
        metrics.gatewayClients.set(Double(counts.clients))
        metrics.gatewaySubscriptions.set(Double(counts.subscriptions))
        metrics.deliveryLag.set(counts.lastLagSeconds)
        return State(
            clients: counts.clients, subscriptions: counts.subscriptions, lagging: counts.lagging, deliveryLagSeconds: counts.lastLagSeconds,
            connected: fanOut.isConnected)
    }

    public func run() async throws {
        fanOut.start()
        var lastTouch = ContinuousClock.now
        await withGracefulShutdownHandler {
            while !Task.isShuttingDownGracefully && !Task.isCancelled {
                try? await Task.sleep(for: configuration.gateway.flushInterval)
                let touch = ContinuousClock.now - lastTouch > configuration.gateway.heartbeatInterval
                if touch { lastTouch = .now }
                await flush(touch: touch)
            }
        } onGracefulShutdown: {}
        await flush(touch: false)
        await fanOut.stop()
        pool.stop()
    }

    /// The user a request's token stands for, from `access_token` or `Authorization: Bearer`;
    /// nil for a missing, bad or expired token.
    func authenticate(_ request: Request) async -> (user: String, isService: Bool)? {
        guard let secret = configuration.jwtSecret else { return nil }
        let bearer = request.headers[.authorization].flatMap { $0.hasPrefix("Bearer ") ? String($0.dropFirst(7)) : nil }
        guard let token = request.uri.queryParameters.get("access_token") ?? bearer else { return nil }
        if !lock.withLock({ keysAdded }) {
            await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
            lock.withLock { keysAdded = true }
        }
        guard let claims = try? await keys.verify(token, as: GatewayToken.self) else { return nil }
        return (claims.sub.value, claims.role == "service")
    }

    /// One connection's life: its messages in order, its frames through a bounded queue.
    func serve(inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter, user: String, isService: Bool) async {
        let client = GatewayClient(user: user, isService: isService, queueLimit: configuration.gateway.queueLimit)
        defer { disconnect(client) }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for await frame in client.frames {
                    do { try await outbound.writeTextMessage(frame) } catch { return }
                }
                if client.isSlow {
                    try? await outbound.close(.unknown(4008), reason: "too slow: resume from your cursor")
                }
            }
            group.addTask { [self] in
                do {
                    for try await message in inbound.messages(maxSize: configuration.gateway.maximumMessageBytes) {
                        guard case .text(let text) = message else {
                            client.send(GatewayProtocol.error(code: "bad_json", message: "send text frames of JSON", reference: NSNull()))
                            continue
                        }
                        await handle(text, from: client)
                    }
                } catch {
                    // A frame over the size limit: the library closes with 1009.
                }
                client.finish()
            }
            await group.next()
            client.finish()
            group.cancelAll()
        }
    }

    private func handle(_ text: String, from client: GatewayClient) async {
        let (parsed, reference) = GatewayProtocol.parse(text)
        do {
            switch try parsed.get() {
            case .ping:
                client.send(GatewayProtocol.pong)
            case .ack(let cursor):
                // Never past what this connection was sent: an ack is a promise about received changes.
                lock.withLock {
                    for subscription in hub.subscriptions(of: client) {
                        let acknowledged = min(cursor, subscription.position)
                        acknowledgements[subscription.databaseClientID] = max(acknowledgements[subscription.databaseClientID] ?? acknowledged, acknowledged)
                    }
                }
            case .subscribe(let table, let filters, let clientID, let cursor):
                try await subscribe(client, table: table, filters: filters, clientID: clientID, cursor: cursor)
            case .unsubscribe(let table, let clientID):
                try await unsubscribe(client, table: table, clientID: clientID)
            }
        } catch let error as GatewayError {
            client.send(GatewayProtocol.error(code: error.code, message: error.message, reference: reference))
        } catch let error as PostgresError {
            client.send(GatewayProtocol.error(code: error.sqlState, message: error.message, reference: reference))
        } catch {
            let reason = (error as? ConnectionError)?.summary ?? "\(error)"
            client.send(GatewayProtocol.error(code: "unavailable", message: "the database is unavailable (\(reason)); try again", reference: reference))
        }
    }

    private func subscribe(_ client: GatewayClient, table: String, filters: [String: Any], clientID: String, cursor: FeedCursor?) async throws {
        let databaseClientID = client.databaseClientID(clientID)
        let filterText = String(decoding: try JSONSerialization.data(withJSONObject: filters), as: UTF8.self)
        let user = client.isService ? nil : client.user
        // The filters as the feed normalizes them are what the fan-out matches the subscription with.
        let answer = try await pool.run { connection in
            try connection.query(
                """
                SELECT feed.subscribe($1, $2::regclass, $3::jsonb, $4, $5), $2::regclass::oid, feed.channel_name($2::regclass),
                       feed.normalize_filters($2::regclass, $3::jsonb)::text
                """, [databaseClientID, table, filterText, user, cursor?.description]
            ).rows.first
        }
        guard let answer, let start = answer[0].flatMap(FeedCursor.init), let tableID = answer[1].flatMap({ UInt32($0) }), let channel = answer[2],
            let filters = answer[3]
        else { throw GatewayError(code: "XX000", message: "feed.subscribe() answered nothing") }
        // Subscribing again on this connection replaces the earlier subscription and its position.
        hub.remove(from: client) { $0.clientID == clientID && $0.tableID == tableID }
        // The answer is queued before any change for the subscription can be.
        client.send(GatewayProtocol.subscribed(table: table, clientID: clientID, cursor: start))
        hub.add(
            GatewayHub.Subscription(
                client: client, clientID: clientID, databaseClientID: databaseClientID,
                group: GatewayHub.Group(tableID: tableID, filters: filters, userID: user), position: start),
            channel: channel)
        lock.withLock { _ = gone.remove(databaseClientID) }
        fanOut.wake()
    }

    private func unsubscribe(_ client: GatewayClient, table: String, clientID: String) async throws {
        let databaseClientID = client.databaseClientID(clientID)
        let tableID = try await pool.run { connection in
            try connection.query("SELECT feed.unsubscribe($1, $2::regclass), $2::regclass::oid", [databaseClientID, table]).rows.first?[1]
        }.flatMap { UInt32($0) }
        hub.remove(from: client) { $0.clientID == clientID && $0.tableID == tableID }
        client.send(GatewayProtocol.unsubscribed(table: table, clientID: clientID))
    }

    /// A connection ended: its subscriptions stop receiving, and the feed marks those no other
    /// connection holds inactive at the next flush, after their acknowledgements.
    private func disconnect(_ client: GatewayClient) {
        client.finish()
        let removed = hub.remove(from: client)
        lock.withLock {
            for subscription in removed where !hub.isHeld(subscription.databaseClientID) { gone.insert(subscription.databaseClientID) }
        }
    }

    /// Writes the acknowledgements received since the last flush, marks gone clients inactive,
    /// and, when `touch`, records every held client as alive.
    private func flush(touch: Bool) async {
        let (acks, leaving) = lock.withLock {
            defer { (acknowledgements, gone) = ([:], []) }
            return (acknowledgements, Array(gone))
        }
        let alive = touch ? hub.databaseClientIDs : []
        guard !acks.isEmpty || !leaving.isEmpty || !alive.isEmpty else { return }
        do {
            try await pool.run { connection in
                if !acks.isEmpty {
                    let ids = Array(acks.keys)
                    _ = try connection.query(
                        "SELECT feed.acknowledge(string_to_array($1, ' '), string_to_array($2, ' '))",
                        [ids.joined(separator: " "), ids.map { acks[$0]!.description }.joined(separator: " ")])
                }
                if !leaving.isEmpty {
                    _ = try connection.query("SELECT feed.disconnect(string_to_array($1, ' '))", [leaving.joined(separator: " ")])
                }
                if !alive.isEmpty {
                    _ = try connection.query("SELECT sum(feed.touch(c)) FROM unnest(string_to_array($1, ' ')) c", [alive.joined(separator: " ")])
                }
            }
        } catch {
            // Kept for the next flush: an acknowledgement only moves a cursor forward.
            lock.withLock {
                acknowledgements.merge(acks) { max($0, $1) }
                gone.formUnion(leaving.filter { !hub.isHeld($0) })
            }
            logger.warning("gateway: could not write acknowledgements: \((error as? ConnectionError)?.summary ?? "\(error)")")
        }
    }
}
