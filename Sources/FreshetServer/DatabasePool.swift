import Foundation
import Freshet

/// A few database connections, each on a thread of its own since libpq blocks, that run the jobs
/// handed to them in order of arrival. A connection that fails is dropped and opened again for the
/// next job; the job that met the failure gets the error.
final class DatabasePool: @unchecked Sendable {
    private let conninfo: String
    private let metrics: ServerMetrics
    private let condition = NSCondition()
    private var jobs: [(Result<PGConnection, any Error>) -> Void] = []
    private var stopping = false

    init(conninfo: String, size: Int, name: String, metrics: ServerMetrics) {
        self.conninfo = conninfo
        self.metrics = metrics
        for index in 0..<max(1, size) {
            let thread = Thread { [self] in work() }
            thread.name = "\(name)-\(index)"
            thread.start()
        }
    }

    /// Runs `job` on one of the connections.
    func run<T: Sendable>(_ job: @escaping @Sendable (PGConnection) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (done: CheckedContinuation<T, any Error>) in
            condition.lock()
            defer { condition.unlock() }
            guard !stopping else { return done.resume(throwing: CancellationError()) }
            jobs.append { connection in done.resume(with: Result { try job(connection.get()) }) }
            condition.signal()
        }
    }

    /// Lets the jobs already queued finish, then ends the threads.
    func stop() {
        condition.lock()
        stopping = true
        condition.broadcast()
        condition.unlock()
    }

    private func work() {
        var connection: PGConnection?
        var opened = false
        while true {
            condition.lock()
            while jobs.isEmpty && !stopping { condition.wait() }
            if jobs.isEmpty {
                condition.unlock()
                return
            }
            let job = jobs.removeFirst()
            condition.unlock()
            if connection?.isHealthy != true {
                do {
                    connection = try PGConnection(conninfo: conninfo)
                    if opened { metrics.databaseReconnects.increment() }
                    opened = true
                } catch {
                    // The job learns why there is no connection; the next one tries again.
                    connection = nil
                    job(.failure(error))
                    continue
                }
            }
            job(.success(connection!))
        }
    }
}
