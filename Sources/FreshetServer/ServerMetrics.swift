import Prometheus

/// The counters and gauges `GET /metrics` prints, in Prometheus's text format.
public final class ServerMetrics: Sendable {
    public let registry = PrometheusCollectorRegistry()
    let ordersProcessed: Counter
    let databaseReconnects: Counter
    let processorsConnected: Gauge

    public init() {
        ordersProcessed = registry.makeCounter(
            name: "freshet_orders_processed_total", help: "Orders the server's processors took from jobs.order_queue.")
        databaseReconnects = registry.makeCounter(
            name: "freshet_database_reconnects_total", help: "Database connections the server opened again after losing one.")
        processorsConnected = registry.makeGauge(
            name: "freshet_order_processors_connected", help: "Order processors connected and listening.")
    }

    /// Every metric, as Prometheus scrapes it.
    public var text: String { registry.emitToString() }
}
