import Dispatch
import Foundation
import Freshet
import Logging
import ServiceLifecycle

/// Processes orders the moment they are inserted (seed 003): each of its connections LISTENs on
/// `jobs_order_queue` and, when woken, drains the queue with `jobs.process_next_queue_order()`,
/// one order per transaction, so a server killed mid-order leaves that order processed or pending.
///
/// libpq blocks, so each connection has a thread of its own rather than a task on the shared
/// pool. pg_cron's one-minute drain stays the fallback while the server is down.
public final class OrderProcessor: Service, @unchecked Sendable {
    private let configuration: ServerConfiguration
    private let metrics: ServerMetrics
    private let logger: Logger
    private let lock = NSLock()
    private var stopping = false
    private var connected = 0
    private var processed = 0

    public init(configuration: ServerConfiguration, metrics: ServerMetrics, logger: Logger) {
        self.configuration = configuration
        self.metrics = metrics
        self.logger = logger
    }

    /// How many processors there are and are connected, and how many orders they processed since the start.
    public struct State: Sendable {
        public var configured: Int
        public var connected: Int
        public var processed: Int
    }

    public var state: State {
        lock.withLock { State(configured: configuration.orderProcessors, connected: connected, processed: processed) }
    }

    private var isStopping: Bool { lock.withLock { stopping } }

    public func run() async throws {
        // With no processors the service still lives as long as the group: ending early would stop the server.
        guard configuration.orderProcessors > 0 else { return try await gracefulShutdown() }
        let finished = DispatchGroup()
        for index in 0..<configuration.orderProcessors {
            finished.enter()
            let thread = Thread { [self] in
                process(index)
                finished.leave()
            }
            thread.name = "order-processor-\(index)"
            thread.start()
        }
        // An order in flight finishes in its transaction; the wait for a wake-up is short.
        await withGracefulShutdownHandler {
            await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
                finished.notify(queue: .global()) { done.resume() }
            }
        } onGracefulShutdown: { [self] in
            lock.withLock { stopping = true }
        }
    }

    /// One processor's life: connect, listen, drain when woken, and connect again with backoff
    /// when the connection goes away.
    private func process(_ index: Int) {
        let reconnecting = Reconnecting(
            conninfo: configuration.serverConninfo, name: "order processor \(index)", metrics: metrics, logger: logger,
            maximumDelay: configuration.maximumReconnectDelay, isStopping: { self.isStopping })
        reconnecting.run(connected: { up in
            lock.withLock { connected += up ? 1 : -1 }
            if up { metrics.processorsConnected.increment() } else { metrics.processorsConnected.decrement() }
        }) { connection in
            try connection.execute("LISTEN jobs_order_queue")
            // Drains once at the start too: orders inserted while no processor listened.
            while !isStopping {
                while !isStopping, try connection.scalar("SELECT jobs.process_next_queue_order()") != nil {
                    lock.withLock { processed += 1 }
                    metrics.ordersProcessed.increment()
                }
                _ = try connection.waitForNotification(timeout: 0.25)
            }
        }
    }
}
