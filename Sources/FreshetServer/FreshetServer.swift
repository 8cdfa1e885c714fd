import Foundation
import Freshet
import Hummingbird
import HummingbirdWebSocket
import Logging
import ServiceLifecycle

/// The server: HTTP (health and metrics), the WebSocket gateway, and the services beside them, in
/// one service group that shuts down gracefully on SIGTERM or SIGINT.
public struct FreshetServer: Sendable {
    public let configuration: ServerConfiguration
    public let logger: Logger

    public init(configuration: ServerConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    /// Runs until a signal asks it to stop; prints `listening on http://HOST:PORT` once it accepts
    /// connections, with the port the system chose when the configuration says 0.
    public func run() async throws {
        let metrics = ServerMetrics()
        let processor = OrderProcessor(configuration: configuration, metrics: metrics, logger: logger)
        let gateway = Gateway(configuration: configuration, metrics: metrics, logger: logger)
        let router = Router(context: GatewayRequestContext.self)
        let conninfo = configuration.serverConninfo
        router.get("health") { _, _ -> Response in
            let report = await HealthReport.check(conninfo: conninfo, processors: processor.state, gateway: gateway.state)
            return Response(
                status: report.healthy ? .ok : .serviceUnavailable, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(string: report.json)))
        }
        router.get("metrics") { _, _ -> Response in
            _ = gateway.state
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                body: .init(byteBuffer: ByteBuffer(string: metrics.text)))
        }
        // A missing, bad or expired token is refused before the upgrade.
        router.ws("ws/db_subscriptions") { request, context in
            guard await gateway.authenticate(request) != nil else {
                // A plain GET is answered 401 as it is; only a declined upgrade needs the mark.
                if request.headers[.upgrade] != nil { RefusedUpgradeStatus.markRefused(context.channel) }
                throw HTTPError(.unauthorized, message: "a valid gateway token is required")
            }
            return .upgrade([:])
        } onUpgrade: { inbound, outbound, context in
            guard let (user, isService) = await gateway.authenticate(context.request) else { return }
            await gateway.serve(inbound: inbound, outbound: outbound, user: user, isService: isService)
        }
        let application = Application(
            router: router,
            server: .http1WebSocketUpgrade(
                webSocketRouter: router,
                configuration: .init(
                    http1: .init(additionalChannelHandlers: [RefusedUpgradeStatus()]),
                    ws: .init(
                        maxFrameSize: configuration.gateway.maximumMessageBytes,
                        autoPing: .enabled(timePeriod: configuration.gateway.pingInterval),
                        // A dead client never answers the close either: give up on it after one ping interval, at most 5 s.
                        closeTimeout: min(configuration.gateway.pingInterval, .seconds(5))))),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "freshet-server"),
            services: [processor, gateway],
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? configuration.port
                print("listening on http://\(configuration.host):\(port)")
                fflush(nil)
            },
            logger: logger)
        try await application.runService()
    }
}
