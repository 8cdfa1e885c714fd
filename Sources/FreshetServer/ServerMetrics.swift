import Prometheus

/// The counters and gauges `GET /metrics` prints, in Prometheus's text format.
public final class ServerMetrics: Sendable {
    public let registry = PrometheusCollectorRegistry()
    let ordersProcessed: Counter
    let databaseReconnects: Counter
    let processorsConnected: Gauge
    let gatewayClients: Gauge
    let gatewaySubscriptions: Gauge
    let messagesSent: Counter
    let clientsDroppedSlow: Counter
    let deliveryLag: Gauge

    public init() {
        ordersProcessed = registry.makeCounter(
            name: "freshet_orders_processed_total", help: "Orders the server's processors took from jobs.order_queue.")
        databaseReconnects = registry.makeCounter(
            name: "freshet_database_reconnects_total", help: "Database connections the server opened again after losing one.")
        processorsConnected = registry.makeGauge(
            name: "freshet_order_processors_connected", help: "Order processors connected and listening.")
        gatewayClients = registry.makeGauge(name: "freshet_gateway_clients", help: "WebSocket clients connected to the gateway.")
        gatewaySubscriptions = registry.makeGauge(name: "freshet_gateway_subscriptions", help: "Subscriptions the gateway's clients hold.")
        messagesSent = registry.makeCounter(name: "freshet_gateway_messages_sent_total", help: "db_change frames queued for clients.")
        clientsDroppedSlow = registry.makeCounter(
            name: "freshet_gateway_clients_dropped_slow_total", help: "Clients closed with 4008 because their outbound queue filled.")
        deliveryLag = registry.makeGauge(
            name: "freshet_gateway_delivery_lag_seconds", help: "From commit to queued for its clients, for the newest change of the last round that delivered any.")
    }

    /// Every metric, as Prometheus scrapes it.
    public var text: String { registry.emitToString() }
}
