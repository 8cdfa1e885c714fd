import CLibPQ
import Foundation

/// One thread that loads libpq and then runs the connection work handed to it, in order.
///
/// Loading libpq maps two dozen libraries, which takes milliseconds; a process about to connect
/// can start that before it has parsed its arguments. Work goes to the same thread because
/// starting a thread while another loads a library waits for the loader's lock.
public final class BackgroundConnector: @unchecked Sendable {
    public static let shared = BackgroundConnector()

    private let condition = NSCondition()
    private var work: [@Sendable () -> Void] = []
    private var isRunning = false

    /// Starts the thread, which loads libpq first; later calls do nothing.
    public func start() {
        condition.lock()
        defer { condition.unlock() }
        guard !isRunning else { return }
        isRunning = true
        Thread { [self] in
            _ = freshet_libpq_load()
            while true {
                condition.lock()
                while work.isEmpty { condition.wait() }
                let next = work.removeFirst()
                condition.unlock()
                next()
            }
        }.start()
    }

    /// Runs `job` on the thread, after libpq has loaded and after the work handed over before it.
    public func run(_ job: @escaping @Sendable () -> Void) {
        start()
        condition.lock()
        work.append(job)
        condition.signal()
        condition.unlock()
    }
}
