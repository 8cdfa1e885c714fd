import CLibPQ
import Foundation

/// A thread that runs the work handed to it, in order, after an optional first task.
///
/// Processes that measure in milliseconds start theirs early: starting a thread while another
/// loads a library waits for the loader's lock.
public final class WorkerThread: @unchecked Sendable {
    /// Loads libpq first, then runs connection work: a process about to connect starts it before
    /// parsing its arguments, since loading libpq maps two dozen libraries.
    public static let connector = WorkerThread { _ = freshet_libpq_load() }
    /// Takes half of a loop of system calls (`status`'s stats) while the connector waits on the server.
    public static let helper = WorkerThread()

    private let prelude: @Sendable () -> Void
    private let condition = NSCondition()
    private var work: [@Sendable () -> Void] = []
    private var isRunning = false

    init(prelude: @escaping @Sendable () -> Void = {}) {
        self.prelude = prelude
    }

    /// Starts the thread, which runs the first task; later calls do nothing.
    public func start() {
        condition.lock()
        defer { condition.unlock() }
        guard !isRunning else { return }
        isRunning = true
        Thread { [self] in
            prelude()
            while true {
                condition.lock()
                while work.isEmpty { condition.wait() }
                let next = work.removeFirst()
                condition.unlock()
                next()
            }
        }.start()
    }

    /// Runs `job` on the thread, after the first task and the work handed over before it.
    public func run(_ job: @escaping @Sendable () -> Void) {
        start()
        condition.lock()
        work.append(job)
        condition.signal()
        condition.unlock()
    }

    /// Calls `body` for `0..<count` in two ranges, the upper one on this thread if it was started.
    func splitInTwo(_ count: Int, _ body: @escaping @Sendable (Range<Int>) -> Void) {
        guard condition.withLock({ isRunning }), count > 1 else { return body(0..<count) }
        let middle = count / 2
        let done = DispatchSemaphore(value: 0)
        run {
            body(middle..<count)
            done.signal()
        }
        body(0..<middle)
        done.wait()
    }
}
