import Foundation
import Freshet
import Logging

/// A server thread's database connection, opened again with doubling backoff whenever it fails.
struct Reconnecting {
    let conninfo: String
    /// Who is connecting, for the log: "order processor 0", "gateway fan-out".
    let name: String
    let metrics: ServerMetrics
    let logger: Logger
    let maximumDelay: Duration
    let isStopping: () -> Bool

    /// Runs `body` on a connection until stopped, connecting again after each failure; `connected`
    /// hears when a connection comes up and goes away.
    func run(connected: (Bool) -> Void, _ body: (PGConnection) throws -> Void) {
        var delay = Duration.milliseconds(100)
        var isReconnect = false
        while !isStopping() {
            var upSince: ContinuousClock.Instant?
            do {
                let connection = try PGConnection(conninfo: conninfo)
                if isReconnect { metrics.databaseReconnects.increment() }
                isReconnect = true
                upSince = .now
                connected(true)
                defer { connected(false) }
                try body(connection)
            } catch {
                // Only a connection that worked for a while starts the backoff again: one that fails
                // at once (no grants, a missing function) must not retry ten times a second.
                if let upSince, ContinuousClock.now - upSince > .seconds(10) { delay = .milliseconds(100) }
                let reason = (error as? ConnectionError)?.summary ?? "\(error)"
                logger.warning("\(name): \(reason); connecting again in \(delay)")
                let deadline = ContinuousClock.now.advanced(by: delay)
                while !isStopping() && ContinuousClock.now < deadline { usleep(20_000) }
                delay = min(delay * 2, maximumDelay)
            }
        }
    }
}
