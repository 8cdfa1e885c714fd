import Dispatch
import Foundation
import Freshet

/// What `GET /health` answers: whether the database is reachable, the refresh engine's and the
/// feed's own health, and the server's state. Healthy only when all of them are.
public struct HealthReport: Sendable {
    public var healthy: Bool
    public var json: String

    /// Reads the database's half on a thread of its own: libpq blocks.
    static func check(conninfo: String, processors: OrderProcessor.State, gateway: Gateway.State) async -> HealthReport {
        await withCheckedContinuation { (done: CheckedContinuation<HealthReport, Never>) in
            DispatchQueue.global().async { done.resume(returning: read(conninfo: conninfo, processors: processors, gateway: gateway)) }
        }
    }

    private static func read(conninfo: String, processors: OrderProcessor.State, gateway: Gateway.State) -> HealthReport {
        var report: [String: Any] = [
            "server": [
                "order_processors": [
                    "configured": processors.configured, "connected": processors.connected, "processed": processors.processed,
                ],
                "gateway": [
                    "clients": gateway.clients, "subscriptions": gateway.subscriptions, "catching_up": gateway.lagging,
                    "delivery_lag_ms": (gateway.deliveryLagSeconds * 1000).rounded(), "connected": gateway.connected,
                ],
            ],
        ]
        var healthy = processors.connected == processors.configured && gateway.connected
        do {
            let connection = try PGConnection(conninfo: conninfo)
            let database = try connection.scalar(
                """
                SELECT jsonb_build_object('reachable', true, 'refresh', refresh.health_check(),
                                          'feed', (SELECT to_jsonb(h) FROM feed.health() h))::text
                """) ?? "{}"
            let parsed = (try? JSONSerialization.jsonObject(with: Data(database.utf8))) as? [String: Any] ?? [:]
            report["database"] = ["reachable": true]
            report["refresh"] = parsed["refresh"]
            report["feed"] = parsed["feed"]
            let refreshHealthy = (parsed["refresh"] as? [String: Any])?["healthy"] as? Bool ?? false
            let feedHealthy = (parsed["feed"] as? [String: Any])?["healthy"] as? Bool ?? false
            healthy = healthy && refreshHealthy && feedHealthy
        } catch {
            report["database"] = ["reachable": false, "error": (error as? ConnectionError)?.summary ?? "\(error)"]
            healthy = false
        }
        report["healthy"] = healthy
        let data = (try? JSONSerialization.data(withJSONObject: report, options: [.sortedKeys])) ?? Data("{}".utf8)
        return HealthReport(healthy: healthy, json: String(decoding: data, as: UTF8.self))
    }
}
