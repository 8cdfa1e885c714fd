import Foundation

/// Who receives what: every subscription of every connected client, and how far each has been sent.
///
/// One rule makes delivery lossless and free of duplicates: a subscription's `position` is the
/// point up to which every change for it has been queued, and a change is queued only when it lies
/// past that point. A new subscription starts *lagging* at its start cursor; each fan-out round reads,
/// in one snapshot, the new stretch of the log for live subscriptions and a catch-up page for
/// lagging ones. When the catch-up page comes back short, the lagging subscriptions have everything
/// up to the snapshot's end, and they go live there. Rounds run one at a time, so no stretch of the
/// log is judged by two snapshots.
final class GatewayHub: @unchecked Sendable {
    /// One client id's subscription to one table, on one connection.
    final class Subscription: @unchecked Sendable {
        let client: GatewayClient
        let clientID: String
        let databaseClientID: String
        let group: Group
        fileprivate(set) var position: FeedCursor
        fileprivate(set) var isLive = false

        var tableID: UInt32 { group.tableID }

        init(client: GatewayClient, clientID: String, databaseClientID: String, group: Group, position: FeedCursor) {
            self.client = client
            self.clientID = clientID
            self.databaseClientID = databaseClientID
            self.group = group
            self.position = position
        }
    }

    /// What a subscription matches, as the feed stores it: subscriptions with equal groups receive
    /// the same changes, so the fan-out matches each change once per group.
    struct Group: Hashable, Sendable {
        var tableID: UInt32
        /// The normalized filters, as `feed.subscriptions` holds them (jsonb text).
        var filters: String
        /// The user whose rows it may receive; nil for a service token's subscription.
        var userID: String?
    }

    /// One change and the groups it is for, with its `db_change` frame already built by the server.
    struct Delivery: Sendable {
        var cursor: FeedCursor
        var groups: [Group]
        var frame: String
        var committedAtMicroseconds: Int64
    }

    private let lock = NSLock()
    private var byDatabaseClient: [String: [Subscription]] = [:]
    private var byGroup: [Group: [Subscription]] = [:]
    private var lagging: [ObjectIdentifier: Subscription] = [:]
    private var listening: Set<String> = []
    private var channelsToListen: [String] = []
    /// Where live delivery has reached; nil until the first round reads the end of the log.
    private(set) var livePosition: FeedCursor?
    private var lastLag: Double = 0

    /// Adds a subscription that catches up from its start; returns whether its table's channel is new.
    @discardableResult
    func add(_ subscription: Subscription, channel: String) -> Bool {
        lock.withLock {
            byDatabaseClient[subscription.databaseClientID, default: []].append(subscription)
            byGroup[subscription.group, default: []].append(subscription)
            lagging[ObjectIdentifier(subscription)] = subscription
            guard listening.insert(channel).inserted else { return false }
            channelsToListen.append(channel)
            return true
        }
    }

    /// Removes `client`'s subscriptions matching `predicate`; returns them.
    @discardableResult
    func remove(from client: GatewayClient, where predicate: (Subscription) -> Bool = { _ in true }) -> [Subscription] {
        lock.withLock {
            var removed: [Subscription] = []
            for (key, subscriptions) in byDatabaseClient {
                let gone = subscriptions.filter { $0.client === client && predicate($0) }
                guard !gone.isEmpty else { continue }
                removed += gone
                let kept = subscriptions.filter { !($0.client === client && predicate($0)) }
                byDatabaseClient[key] = kept.isEmpty ? nil : kept
            }
            for subscription in removed {
                lagging[ObjectIdentifier(subscription)] = nil
                let kept = byGroup[subscription.group]?.filter { $0 !== subscription } ?? []
                byGroup[subscription.group] = kept.isEmpty ? nil : kept
            }
            return removed
        }
    }

    /// `client`'s subscriptions, for acknowledgements.
    func subscriptions(of client: GatewayClient) -> [Subscription] {
        lock.withLock { byDatabaseClient.values.flatMap { $0.filter { $0.client === client } } }
    }

    /// Whether any connection still holds the feed client.
    func isHeld(_ databaseClientID: String) -> Bool { lock.withLock { byDatabaseClient[databaseClientID] != nil } }

    /// Every feed client held, for heartbeats.
    var databaseClientIDs: [String] { lock.withLock { Array(byDatabaseClient.keys) } }

    /// Channels to LISTEN on that the listener has not taken yet; taking them empties the list.
    func takeChannelsToListen() -> [String] {
        lock.withLock {
            defer { channelsToListen = [] }
            return channelsToListen
        }
    }

    /// Every channel, for a listener that connected again.
    var allChannels: [String] { lock.withLock { Array(listening) } }

    /// Every group held, for a live round.
    var groups: [Group] { lock.withLock { Array(byGroup.keys) } }

    /// Where the next catch-up page starts, and for which groups; nil when none lags.
    func laggingStart() -> (from: FeedCursor, groups: [Group], subscriptions: [Subscription])? {
        lock.withLock {
            guard let from = lagging.values.map(\.position).min() else { return nil }
            let subscriptions = Array(lagging.values)
            return (from, Array(Set(subscriptions.map(\.group))), subscriptions)
        }
    }

    /// Counts for health and metrics.
    var counts: (clients: Int, subscriptions: Int, lagging: Int, lastLagSeconds: Double) {
        lock.withLock {
            let all = byDatabaseClient.values.joined()
            return (Set(all.map { ObjectIdentifier($0.client) }).count, all.count, lagging.count, lastLag)
        }
    }

    /// Drops lagging subscriptions whose catch-up the feed refused (their cursor was pruned
    /// meanwhile), telling each client why; the others go on.
    func fail(_ subscriptions: [Subscription], frame: (Subscription) -> String) {
        let failed = Set(subscriptions.map(ObjectIdentifier.init))
        for subscription in subscriptions { subscription.client.send(frame(subscription)) }
        for subscription in subscriptions { remove(from: subscription.client) { failed.contains(ObjectIdentifier($0)) } }
    }

    /// Whether a subscription waits to catch up.
    var hasLagging: Bool { lock.withLock { !lagging.isEmpty } }

    /// Forgets the live position, so the next round starts again at the end of the log.
    func restartLive() { lock.withLock { livePosition = nil } }

    /// The first round's start: live delivery begins at the end of the log as it was then.
    func startLive(at head: FeedCursor) { lock.withLock { if livePosition == nil { livePosition = head } } }

    /// Queues one round's changes. `live` is the stretch after `livePosition`, complete up to
    /// `liveEnd`; `catchUp` is the page for `caughtUp` (the lagging subscriptions the round read
    /// for), complete up to `catchUpEnd`. Subscriptions whose page was short go live at `head`.
    /// Returns the number of frames queued, and the clients that overflowed.
    func dispatch(
        live: [Delivery], liveEnd: FeedCursor, catchUp: [Delivery], caughtUp: [Subscription], catchUpEnd: FeedCursor?, head: FeedCursor,
        now: Double
    ) -> (sent: Int, overflowed: [GatewayClient]) {
        lock.withLock {
            var sent = 0
            var overflowed: [GatewayClient] = []
            func deliver(_ delivery: Delivery, to subscription: Subscription) {
                guard delivery.cursor > subscription.position else { return }
                subscription.position = delivery.cursor
                switch subscription.client.send(delivery.frame) {
                case .queued: sent += 1
                case .overflowed: overflowed.append(subscription.client)
                case .closed: break
                }
            }
            let catching = Set(caughtUp.map(ObjectIdentifier.init))
            for delivery in catchUp {
                for group in delivery.groups {
                    for subscription in byGroup[group] ?? [] where catching.contains(ObjectIdentifier(subscription)) {
                        deliver(delivery, to: subscription)
                    }
                }
            }
            for subscription in caughtUp where lagging[ObjectIdentifier(subscription)] != nil {
                if let catchUpEnd {
                    // A full page: everything up to its last change has been queued.
                    subscription.position = max(subscription.position, catchUpEnd)
                } else {
                    subscription.position = max(subscription.position, head)
                    subscription.isLive = true
                    lagging[ObjectIdentifier(subscription)] = nil
                }
            }
            for delivery in live {
                for group in delivery.groups {
                    for subscription in byGroup[group] ?? [] where subscription.isLive { deliver(delivery, to: subscription) }
                }
            }
            if let last = (live + catchUp).max(by: { $0.committedAtMicroseconds < $1.committedAtMicroseconds }) {
                lastLag = max(0, now - Double(last.committedAtMicroseconds) / 1e6)
            }
            livePosition = max(livePosition ?? liveEnd, liveEnd)
            return (sent, overflowed)
        }
    }
}
