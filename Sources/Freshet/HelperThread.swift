import Foundation

/// A second thread started before any library loads, to take half of a loop of system calls.
///
/// `status` stats every migration file while another thread loads libpq and waits on the server;
/// on two cores a thread that already exists can use that idle time, but one started later waits
/// for the loader's lock.
public final class HelperThread: @unchecked Sendable {
    public static let shared = HelperThread()

    private let condition = NSCondition()
    private var job: (() -> Void)?
    private var isRunning = false
    private var isBusy = false

    /// Starts the thread; later calls do nothing.
    public func start() {
        condition.lock()
        defer { condition.unlock() }
        guard !isRunning else { return }
        isRunning = true
        Thread { [self] in
            while true {
                condition.lock()
                while job == nil { condition.wait() }
                var next = job
                job = nil
                condition.unlock()
                next?()
                // Released before the caller hears it finished: withoutActuallyEscaping checks that.
                next = nil
                condition.lock()
                isBusy = false
                condition.broadcast()
                condition.unlock()
            }
        }.start()
    }

    /// Calls `body` for `0..<count` in two ranges, the upper one on the helper when it runs.
    func splitInTwo(_ count: Int, _ body: (Range<Int>) -> Void) {
        condition.lock()
        let usable = isRunning && !isBusy && count > 1
        if usable { isBusy = true }
        condition.unlock()
        guard usable else { return body(0..<count) }
        let middle = count / 2
        withoutActuallyEscaping(body) { body in
            nonisolated(unsafe) let upper = body
            condition.lock()
            job = { upper(middle..<count) }
            condition.signal()
            condition.unlock()
            body(0..<middle)
            condition.lock()
            while isBusy { condition.wait() }
            condition.unlock()
        }
    }
}
