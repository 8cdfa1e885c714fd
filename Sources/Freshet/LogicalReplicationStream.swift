import CLibPQ
import Foundation

/// A position in the write-ahead log, as PostgreSQL prints it: `16/B374D848`.
public struct LogSequenceNumber: Comparable, Hashable, Sendable, CustomStringConvertible {
    public var value: UInt64

    public init(_ value: UInt64) { self.value = value }

    /// Parses `X/Y` (two hexadecimal halves); nil for anything else.
    public init?(_ text: String) {
        let halves = text.split(separator: "/", omittingEmptySubsequences: false)
        guard halves.count == 2, halves.allSatisfy({ (1...8).contains($0.count) }), let high = UInt64(halves[0], radix: 16),
            let low = UInt64(halves[1], radix: 16)
        else { return nil }
        value = high << 32 | low
    }

    public var description: String { String(value >> 32, radix: 16, uppercase: true) + "/" + String(value & 0xFFFF_FFFF, radix: 16, uppercase: true) }

    public static func < (left: Self, right: Self) -> Bool { left.value < right.value }
}

/// One slot of logical decoding, streamed over the replication protocol (`START_REPLICATION`):
/// the walsender decodes as commits arrive, so reading costs no polling and no decoding again.
///
/// PostgreSQL keeps everything after the position last confirmed with ``confirm(_:)``: a reader
/// that dies before confirming gets the same changes again from the next stream.
public final class LogicalReplicationStream {
    /// What the server sends: decoded output of the plugin, or a keepalive.
    public enum Message: Sendable, Equatable {
        /// One message of the output plugin, for the change or transaction that starts at `start`.
        case data(start: LogSequenceNumber, end: LogSequenceNumber, payload: [UInt8])
        /// The server's end of the WAL; when `replyRequested`, confirm soon or be cut off by `wal_sender_timeout`.
        case keepalive(end: LogSequenceNumber, replyRequested: Bool)
    }

    private let connection: PGConnection

    /// Opens a replication connection and starts streaming `slot` from `start` (`0/0`: from the
    /// slot's confirmed position), with the plugin's `options`.
    public init(conninfo: String, slot: String, start: LogSequenceNumber = LogSequenceNumber(0), options: [(String, String)] = []) throws {
        connection = try PGConnection(conninfo: conninfo, overriding: [("replication", "database")])
        let quotedSlot = "\"" + slot.replacingOccurrences(of: "\"", with: "\"\"") + "\""
        let quotedOptions = options.map { "\"\($0.0.replacingOccurrences(of: "\"", with: "\"\""))\" '\($0.1.replacingOccurrences(of: "'", with: "''"))'" }
        let command = "START_REPLICATION SLOT \(quotedSlot) LOGICAL \(start)" + (options.isEmpty ? "" : " (" + quotedOptions.joined(separator: ", ") + ")")
        guard PQsendQuery(connection.handle, command) == 1, let result = PQgetResult(connection.handle) else { throw connection.connectionFailure() }
        defer { PQclear(result) }
        guard PQresultStatus(result) == PGRES_COPY_BOTH else {
            if !connection.isHealthy { throw connection.connectionFailure() }
            throw PostgresError(result: result)
        }
    }

    /// The next message, waiting up to `timeout` seconds; nil when none came.
    public func next(timeout: Double) throws -> Message? {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: .milliseconds(Int64(timeout * 1000)))
        while true {
            var buffer: UnsafeMutablePointer<CChar>?
            let length = PQgetCopyData(connection.handle, &buffer, 1)
            if length > 0, let buffer {
                defer { PQfreemem(buffer) }
                return try Self.parse(UnsafeRawBufferPointer(start: buffer, count: Int(length)))
            }
            guard length == 0 else { throw streamEnded() }
            let remaining = deadline - clock.now
            guard remaining > .zero else { return nil }
            var descriptor = pollfd(fd: PQsocket(connection.handle), events: Int16(POLLIN), revents: 0)
            let milliseconds = Int32(remaining.components.seconds * 1000 + remaining.components.attoseconds / 1_000_000_000_000_000)
            _ = poll(&descriptor, 1, max(1, milliseconds))
            guard PQconsumeInput(connection.handle) == 1 else { throw connection.connectionFailure() }
        }
    }

    /// Tells the server everything up to `lsn` is safely stored: the slot may let it go, and a
    /// later stream starts after it.
    public func confirm(_ lsn: LogSequenceNumber) throws {
        // Standby status update: written, flushed and applied positions, the time, no reply wanted.
        var message: [UInt8] = [UInt8(ascii: "r")]
        let microsecondsSince2000 = Int64((Date().timeIntervalSince1970 - 946_684_800) * 1_000_000)
        for value in [lsn.value, lsn.value, lsn.value, UInt64(bitPattern: microsecondsSince2000)] {
            message += withUnsafeBytes(of: value.bigEndian, Array.init)
        }
        message.append(0)
        let sent = message.withUnsafeBufferPointer { bytes in
            bytes.withMemoryRebound(to: CChar.self) { PQputCopyData(connection.handle, $0.baseAddress, Int32($0.count)) }
        }
        guard sent == 1, PQflush(connection.handle) == 0 else { throw connection.connectionFailure() }
    }

    private func streamEnded() -> Error {
        if let result = PQgetResult(connection.handle) {
            defer { PQclear(result) }
            if PQresultStatus(result) == PGRES_FATAL_ERROR { return PostgresError(result: result) }
        }
        return connection.connectionFailure()
    }

    static func parse(_ bytes: UnsafeRawBufferPointer) throws -> Message {
        func integer(at offset: Int) -> UInt64 {
            (0..<8).reduce(UInt64(0)) { $0 << 8 | UInt64(bytes[offset + $1]) }
        }
        switch bytes.first {
        case UInt8(ascii: "w") where bytes.count >= 25:
            return .data(start: LogSequenceNumber(integer(at: 1)), end: LogSequenceNumber(integer(at: 9)), payload: Array(bytes[25...]))
        case UInt8(ascii: "k") where bytes.count >= 18:
            return .keepalive(end: LogSequenceNumber(integer(at: 1)), replyRequested: bytes[17] != 0)
        default:
            throw PostgresError(sqlState: "08P01", message: "the replication stream sent a message of \(bytes.count) bytes that is neither data nor a keepalive")
        }
    }
}
