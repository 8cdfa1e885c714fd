import Foundation
import Freshet

/// One WebSocket connection to the gateway: who it acts for, and its bounded outbound queue.
///
/// The queue holds text frames waiting for the socket. A client that lets it fill is too slow to
/// follow the log: it is closed with 4008 and resumes from its last cursor, so it cannot make the
/// server's memory grow or hold back anyone else.
final class GatewayClient: @unchecked Sendable {
    let user: String
    let isService: Bool
    let frames: AsyncStream<String>
    private let continuation: AsyncStream<String>.Continuation
    private let lock = NSLock()
    private var slow = false

    init(user: String, isService: Bool, queueLimit: Int) {
        self.user = user
        self.isService = isService
        (frames, continuation) = AsyncStream.makeStream(of: String.self, bufferingPolicy: .bufferingOldest(queueLimit))
    }

    /// Whether the client was closed for letting its queue fill.
    var isSlow: Bool { lock.withLock { slow } }

    /// What became of a frame handed to ``send(_:)``.
    enum Outcome { case queued, overflowed, closed }

    /// Queues a frame. The first frame that finds the queue full ends it: that one answers `overflowed`.
    @discardableResult
    func send(_ frame: String) -> Outcome {
        switch continuation.yield(frame) {
        case .enqueued: return .queued
        case .dropped:
            lock.withLock { slow = true }
            continuation.finish()
            return .overflowed
        case .terminated: return .closed
        @unknown default: return .closed
        }
    }

    /// Ends the queue: the writer stops once what is queued is written.
    func finish() { continuation.finish() }

    /// The feed's client id for one of this connection's client ids: a digest, so one user's ids
    /// can never name another user's subscription, and service and user tokens never share one.
    func databaseClientID(_ clientID: String) -> String {
        "ws-" + Checksum.hexDigest(Array("\(isService ? "service" : "user")\u{0}\(user)\u{0}\(clientID)".utf8)).prefix(40)
    }
}
