import Freshet

/// Everything `freshet-server` is told at start: where the database is, where to listen, how many
/// connections process orders, and how the gateway runs.
public struct ServerConfiguration: Sendable {
    /// A libpq connection string or URL; empty uses `PG*` variables and libpq's defaults.
    public var conninfo: String
    public var host: String
    public var port: Int
    /// Connections that each LISTEN for new orders and drain the queue when woken.
    public var orderProcessors: Int
    /// The longest wait between reconnection attempts after the database goes away.
    public var maximumReconnectDelay: Duration
    /// The HS256 secret gateway tokens are signed with; without one the gateway refuses every client.
    public var jwtSecret: String?
    public var gateway: GatewaySettings

    /// How the WebSocket gateway runs.
    public struct GatewaySettings: Sendable {
        /// The pool's connections, for subscribing, acknowledgements and heartbeats.
        public var connections = 2
        /// Changes read per query, live or catching up.
        public var pageSize = 1000
        /// Frames a client may have waiting before it is closed with 4008.
        public var queueLimit = 4096
        /// The largest message a client may send; a larger frame closes the connection with 1009.
        public var maximumMessageBytes = 64 * 1024
        /// How often the log is read without a notification, in seconds: notifications are hints.
        public var pollInterval = 1.0
        /// How often acknowledgements and disconnects are written.
        public var flushInterval = Duration.seconds(1)
        /// How often connected clients' subscriptions are recorded as alive.
        public var heartbeatInterval = Duration.seconds(60)
        /// How often idle clients are pinged; one that has not answered the last ping is dropped.
        public var pingInterval = Duration.seconds(30)

        public init() {}
    }

    /// The connection string the server's own connections use: with a connect timeout, so a
    /// database host that stops answering can hold neither a health check nor a shutdown.
    public var serverConninfo: String { ConnectionTarget.conninfo(conninfo, connectTimeoutSeconds: 3) }

    public init(
        conninfo: String = "", host: String = "127.0.0.1", port: Int = 8080, orderProcessors: Int = 2,
        maximumReconnectDelay: Duration = .seconds(5), jwtSecret: String? = nil, gateway: GatewaySettings = GatewaySettings()
    ) {
        self.conninfo = conninfo
        self.host = host
        self.port = port
        self.orderProcessors = orderProcessors
        self.maximumReconnectDelay = maximumReconnectDelay
        self.jwtSecret = jwtSecret
        self.gateway = gateway
    }
}
