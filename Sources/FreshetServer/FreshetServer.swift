import Foundation
import Freshet
import Hummingbird
import Logging
import ServiceLifecycle

/// The server: HTTP (health and metrics) and the services beside it, in one service group that
/// shuts down gracefully on SIGTERM or SIGINT.
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
        let router = Router()
        let conninfo = configuration.serverConninfo
        router.get("health") { _, _ -> Response in
            let report = await HealthReport.check(conninfo: conninfo, processors: processor.state)
            return Response(
                status: report.healthy ? .ok : .serviceUnavailable, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(string: report.json)))
        }
        router.get("metrics") { _, _ -> Response in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                body: .init(byteBuffer: ByteBuffer(string: metrics.text)))
        }
        let application = Application(
            router: router,
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "freshet-server"),
            services: [processor],
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? configuration.port
                print("listening on http://\(configuration.host):\(port)")
                fflush(nil)
            },
            logger: logger)
        try await application.runService()
    }
}
