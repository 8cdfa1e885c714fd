import Foundation
import HTTPTypes
import NIOWebSocket
import HummingbirdWSClient
import Logging

/// A real WebSocket client for the gateway tests: sends JSON messages, records every text frame it
/// receives, and how the server closed the connection.
final class TestSocket: @unchecked Sendable {
    private let lock = NSLock()
    private var frames: [String] = []
    private var closeCode: Int?
    private var ended = false
    private let outgoing: AsyncStream<String>.Continuation
    private var task: Task<Void, Never>?

    /// Connects to `url`; with `reads` false the client takes nothing from the socket until
    /// ``startReading()``, as a client too slow to keep up would.
    init(url: String, headers: [String: String] = [:], reads: Bool = true) {
        let (stream, continuation) = AsyncStream.makeStream(of: String.self)
        outgoing = continuation
        let reading = AsyncStream.makeStream(of: Void.self)
        readGate = reading.continuation
        if reads { reading.continuation.yield() }
        var fields = HTTPFields()
        for (name, value) in headers { fields[HTTPField.Name(name)!] = value }
        let configuration = WebSocketClientConfiguration(maxFrameSize: 1 << 20, additionalHeaders: fields)
        task = Task { [self] in
            do {
                let close = try await WebSocketClient.connect(url: url, configuration: configuration, logger: Logger(label: "test-socket")) {
                    inbound, outbound, _ in
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        group.addTask {
                            for await text in stream { try await outbound.write(.text(text)) }
                        }
                        group.addTask { [self] in
                            for await _ in reading.stream { break }
                            for try await message in inbound.messages(maxSize: 1 << 24) {
                                if case .text(let text) = message { lock.withLock { frames.append(text) } }
                            }
                        }
                        try await group.next()
                        group.cancelAll()
                    }
                }
                lock.withLock { closeCode = close.map { Self.number($0.closeCode) } }
            } catch {
                lock.withLock { closeCode = -1 }
            }
            lock.withLock { ended = true }
        }
    }

    private let readGate: AsyncStream<Void>.Continuation

    private static func number(_ code: WebSocketErrorCode) -> Int {
        switch code {
        case .normalClosure: 1000
        case .goingAway: 1001
        case .protocolError: 1002
        case .unacceptableData: 1003
        case .dataInconsistentWithMessage: 1007
        case .policyViolation: 1008
        case .messageTooLarge: 1009
        case .missingExtension: 1010
        case .unexpectedServerError: 1011
        case .unknown(let other): Int(other)
        }
    }

    func startReading() { readGate.yield() }

    func send(_ object: [String: Any]) {
        send(raw: String(decoding: try! JSONSerialization.data(withJSONObject: object), as: UTF8.self))
    }

    func send(raw text: String) { outgoing.yield(text) }

    /// Ends the connection from the client's side and waits for it to be gone.
    func close() async {
        outgoing.finish()
        task?.cancel()
        _ = await task?.value
    }

    /// Every frame so far, parsed.
    var messages: [[String: Any]] {
        lock.withLock { frames }.compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] }
    }

    /// The `db_change` frames so far.
    var changes: [[String: Any]] { messages.filter { $0["type"] as? String == "db_change" } }

    /// The close code the server sent, -1 for a failed connection, nil while open.
    var closedWith: Int? { lock.withLock { ended ? closeCode : nil } }

    /// Waits up to `timeout` seconds for `condition` over the frames received.
    func wait(timeout: Double = 30, for condition: ([[String: Any]]) -> Bool) async -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if condition(messages) { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return condition(messages)
    }
}
