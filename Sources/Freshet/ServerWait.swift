import Foundation

/// Waits for a server to accept connections, for start-up scripts (`migrate wait`).
public enum ServerWait {
    /// Polls with `PQping` until the server answers or `timeout` seconds pass.
    public static func wait(conninfo: String, timeout: Double) throws {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: .milliseconds(Int64(timeout * 1000)))
        while !PGConnection.ping(conninfo: conninfo) {
            guard clock.now < deadline else {
                throw MigrateError.cluster(
                    "the database did not accept connections within \(timeout) s: check that it is running and the connection settings")
            }
            usleep(100_000)
        }
    }
}
