import Freshet

/// Everything `freshet-server` is told at start: where the database is, where to listen, and how
/// many connections process orders.
public struct ServerConfiguration: Sendable {
    /// A libpq connection string or URL; empty uses `PG*` variables and libpq's defaults.
    public var conninfo: String
    public var host: String
    public var port: Int
    /// Connections that each LISTEN for new orders and drain the queue when woken.
    public var orderProcessors: Int
    /// The longest wait between reconnection attempts after the database goes away.
    public var maximumReconnectDelay: Duration

    /// The connection string the server's own connections use: with a connect timeout, so a
    /// database host that stops answering can hold neither a health check nor a shutdown.
    public var serverConninfo: String { ConnectionTarget.conninfo(conninfo, connectTimeoutSeconds: 3) }

    public init(
        conninfo: String = "", host: String = "127.0.0.1", port: Int = 8080, orderProcessors: Int = 2,
        maximumReconnectDelay: Duration = .seconds(5)
    ) {
        self.conninfo = conninfo
        self.host = host
        self.port = port
        self.orderProcessors = orderProcessors
        self.maximumReconnectDelay = maximumReconnectDelay
    }
}
