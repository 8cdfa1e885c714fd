import CLibPQ
import Foundation

/// A blocking libpq connection that runs whole SQL scripts and reports server notices.
public final class PGConnection {
    /// The rows a statement returned, as text, with the command tag.
    public struct Result: Sendable {
        public var columns: [String]
        public var rows: [[String?]]
        public var commandTag: String
    }

    let handle: OpaquePointer
    private let noticeBox = NoticeBox()

    /// Called with each NOTICE, WARNING or INFO the server sends.
    public var onNotice: ((PostgresError) -> Void)? {
        get { noticeBox.handler }
        set { noticeBox.handler = newValue }
    }

    /// Connects with a libpq connection string or URL; an empty string uses `PG*` variables and defaults.
    /// `overriding` sets parameters over what the string says (`replication`, for example).
    public init(conninfo: String, overriding: [(String, String)] = []) throws {
        let connected: OpaquePointer?
        if overriding.isEmpty {
            connected = PQconnectdb(conninfo)
        } else {
            // expand_dbname: the first value is a whole connection string or URL, and the pairs after it win.
            let keywords = (["dbname"] + overriding.map(\.0)).map { strdup($0) }
            let values = ([conninfo] + overriding.map(\.1)).map { strdup($0) }
            defer { (keywords + values).forEach { free($0) } }
            connected = PQconnectdbParams((keywords.map { UnsafePointer($0) }) + [nil], (values.map { UnsafePointer($0) }) + [nil], 1)
        }
        guard let handle = connected else {
            throw ConnectionError(message: "out of memory", target: "the database")
        }
        // Checked before `self.handle` is set: once every stored property is set, a throw runs
        // deinit, which would finish the handle a second time.
        guard PQstatus(handle) == CONNECTION_OK else {
            let message = String(cString: PQerrorMessage(handle)).trimmingCharacters(in: .whitespacesAndNewlines)
            let target = ConnectionTarget(conninfo: conninfo).description
            PQfinish(handle)
            throw ConnectionError(message: message, target: target)
        }
        self.handle = handle
        PQsetNoticeReceiver(handle, { context, result in
            guard let context, let result else { return }
            let box = Unmanaged<NoticeBox>.fromOpaque(context).takeUnretainedValue()
            box.handler?(PostgresError(result: result))
        }, Unmanaged.passUnretained(noticeBox).toOpaque())
    }

    deinit {
        PQfinish(handle)
    }

    /// Where this connection landed: host or socket directory, port, database and user.
    public var target: ConnectionTarget {
        ConnectionTarget(
            host: PQhost(handle).map { String(cString: $0) } ?? "",
            port: PQport(handle).map { String(cString: $0) } ?? "",
            database: PQdb(handle).map { String(cString: $0) } ?? "",
            user: PQuser(handle).map { String(cString: $0) } ?? ""
        )
    }

    /// The server process serving this connection.
    public var backendPID: Int32 { PQbackendPID(handle) }

    /// Whether the server still answers on this connection.
    public var isHealthy: Bool { PQstatus(handle) == CONNECTION_OK }

    /// Whether a transaction block is open (or failed and awaiting ROLLBACK) on this connection.
    public var isInTransaction: Bool {
        let status = PQtransactionStatus(handle)
        return status == PQTRANS_INTRANS || status == PQTRANS_INERROR
    }

    /// Runs one or more statements with the simple query protocol and returns every result.
    ///
    /// The whole text travels in one message, so a multi-statement script costs one round trip.
    /// When a statement fails, the server skips the rest and the error is thrown after libpq
    /// has drained the connection.
    @discardableResult
    public func execute(_ sql: String) throws -> [Result] {
        guard PQsendQuery(handle, sql) == 1 else { throw connectionFailure() }
        var results: [Result] = []
        var failure: PostgresError?
        while let result = PQgetResult(handle) {
            defer { PQclear(result) }
            switch PQresultStatus(result) {
            case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY, PGRES_SINGLE_TUPLE:
                results.append(Self.read(result))
            case PGRES_FATAL_ERROR, PGRES_NONFATAL_ERROR:
                failure = failure ?? PostgresError(result: result)
            case PGRES_COPY_IN, PGRES_COPY_BOTH:
                PQputCopyEnd(handle, "COPY FROM STDIN is not supported in migrations")
            case PGRES_COPY_OUT:
                var buffer: UnsafeMutablePointer<CChar>?
                while PQgetCopyData(handle, &buffer, 0) > 0 { PQfreemem(buffer) }
            default:
                failure = failure ?? PostgresError(result: result)
            }
        }
        if let failure { throw failure }
        if !isHealthy { throw connectionFailure() }
        return results
    }

    /// Runs one statement with text parameters (`$1`, `$2`, ...) and returns its rows.
    @discardableResult
    public func query(_ sql: String, _ parameters: [String?] = []) throws -> Result {
        try withParameters(parameters) { PQexecParams(handle, sql, Int32($0.count), nil, $0, nil, nil, 0) }
    }

    /// Prepares a statement on this connection, to run with ``query(prepared:_:)`` without being
    /// parsed and planned again each time.
    public func prepare(_ name: String, _ sql: String) throws {
        guard let result = PQprepare(handle, name, sql, 0, nil) else { throw connectionFailure() }
        defer { PQclear(result) }
        guard PQresultStatus(result) == PGRES_COMMAND_OK else {
            if !isHealthy { throw connectionFailure() }
            throw PostgresError(result: result)
        }
    }

    /// The text form of a one-dimensional array, for a parameter: `{"a","b \"c\"",NULL}`.
    public static func arrayParameter(_ elements: [String?]) -> String {
        let quoted = elements.map { element in
            element.map { "\"" + $0.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\"" } ?? "NULL"
        }
        return "{" + quoted.joined(separator: ",") + "}"
    }

    /// Runs a statement made by ``prepare(_:_:)`` with text parameters and returns its rows.
    @discardableResult
    public func query(prepared name: String, _ parameters: [String?]) throws -> Result {
        try withParameters(parameters) { PQexecPrepared(handle, name, Int32($0.count), $0, nil, nil, 0) }
    }

    private func withParameters(_ parameters: [String?], _ run: ([UnsafePointer<CChar>?]) -> OpaquePointer?) throws -> Result {
        let cStrings = parameters.map { $0.map { strdup($0) } ?? nil }
        defer { cStrings.forEach { free($0) } }
        guard let result = run(cStrings.map { UnsafePointer($0) }) else { throw connectionFailure() }
        defer { PQclear(result) }
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK:
            return Self.read(result)
        case PGRES_FATAL_ERROR, PGRES_NONFATAL_ERROR:
            throw PostgresError(result: result)
        default:
            if !isHealthy { throw connectionFailure() }
            throw PostgresError(result: result)
        }
    }

    /// One value per row of a parameterless query, built straight from libpq's result: no array of
    /// strings per row in between, which thousands of rows would feel.
    ///
    /// - Parameter binary: ask for PostgreSQL's binary format, so timestamps and intervals arrive
    ///   as numbers that the server spends nothing formatting; read them with ``ResultRow``'s
    ///   binary accessors.
    public func rows<T>(_ sql: String, binary: Bool = false, _ transform: (ResultRow) -> T) throws -> [T] {
        guard let result = PQexecParams(handle, sql, 0, nil, nil, nil, nil, binary ? 1 : 0) else { throw connectionFailure() }
        defer { PQclear(result) }
        switch PQresultStatus(result) {
        case PGRES_TUPLES_OK:
            let count = PQntuples(result)
            var values: [T] = []
            values.reserveCapacity(Int(count))
            for row in 0..<count { values.append(transform(ResultRow(result: result, row: row))) }
            return values
        case PGRES_FATAL_ERROR, PGRES_NONFATAL_ERROR, PGRES_COMMAND_OK:
            throw PostgresError(result: result)
        default:
            if !isHealthy { throw connectionFailure() }
            throw PostgresError(result: result)
        }
    }

    /// One row of a result being read by ``rows(_:_:)``; valid only inside the transform.
    public struct ResultRow {
        fileprivate let result: OpaquePointer
        fileprivate let row: Int32

        /// The column's text, or nil for NULL. A text column's binary form is its text, and libpq
        /// ends every value with a zero byte.
        public subscript(column: Int32) -> String? {
            PQgetisnull(result, row, column) == 1 ? nil : String(cString: PQgetvalue(result, row, column))
        }

        /// The column read as an integer straight from libpq's text or a binary smallint, integer
        /// or bigint, or nil for NULL or a non-integer.
        public func integer(_ column: Int32) -> Int64? {
            guard PQgetisnull(result, row, column) == 0, let text = PQgetvalue(result, row, column) else { return nil }
            if PQfformat(result, column) == 1 {
                let length = PQgetlength(result, row, column)
                return [2, 4, 8].contains(length) ? bigEndian(text, length) : nil
            }
            guard text.pointee != 0 else { return nil }
            var end: UnsafeMutablePointer<CChar>?
            errno = 0
            let value = strtoll(text, &end, 10)
            return end?.pointee == 0 && errno == 0 ? Int64(value) : nil
        }

        /// The column read as a number straight from libpq's text, or nil for NULL or a non-number.
        public func number(_ column: Int32) -> Double? {
            guard PQgetisnull(result, row, column) == 0, let text = PQgetvalue(result, row, column), text.pointee != 0 else { return nil }
            var end: UnsafeMutablePointer<CChar>?
            let value = strtod(text, &end)
            return end?.pointee == 0 ? value : nil
        }

        /// A binary timestamp or timestamptz column in microseconds since 2000-01-01 00:00 UTC,
        /// or nil for NULL or another type.
        public func timestampMicroseconds(_ column: Int32) -> Int64? {
            guard PQgetisnull(result, row, column) == 0, PQfformat(result, column) == 1, PQgetlength(result, row, column) == 8 else { return nil }
            return bigEndian(PQgetvalue(result, row, column), 8)
        }

        /// A binary interval column in microseconds, or nil for NULL or another type. As
        /// `date_part('epoch', …)` does, a day counts 24 hours, a month 30 days and a year 365.25 days.
        public func intervalMicroseconds(_ column: Int32) -> Int64? {
            guard PQgetisnull(result, row, column) == 0, PQfformat(result, column) == 1, PQgetlength(result, row, column) == 16,
                let value = PQgetvalue(result, row, column)
            else { return nil }
            let (time, days, months) = (bigEndian(value, 8), bigEndian(value + 8, 4), bigEndian(value + 12, 4))
            let dayMicroseconds: Int64 = 86_400_000_000
            return time + days * dayMicroseconds + (months / 12) * dayMicroseconds * 1461 / 4 + (months % 12) * 30 * dayMicroseconds
        }

        /// The signed big-endian integer of `length` bytes at `bytes`: PostgreSQL's binary integers.
        private func bigEndian(_ bytes: UnsafePointer<CChar>, _ length: Int32) -> Int64 {
            var value: Int64 = Int64(Int8(bitPattern: UInt8(bitPattern: bytes[0])))
            for index in 1..<Int(length) { value = value << 8 | Int64(UInt8(bitPattern: bytes[index])) }
            return value
        }
    }

    /// The first column of the first row, or nil.
    public func scalar(_ sql: String, _ parameters: [String?] = []) throws -> String? {
        try query(sql, parameters).rows.first?.first ?? nil
    }

    func connectionFailure() -> ConnectionError {
        ConnectionError(
            message: String(cString: PQerrorMessage(handle)).trimmingCharacters(in: .whitespacesAndNewlines),
            target: target.description, lost: true)
    }

    private static func read(_ result: OpaquePointer) -> Result {
        let columnCount = PQnfields(result)
        let rowCount = PQntuples(result)
        let columns = (0..<columnCount).map { String(cString: PQfname(result, $0)) }
        var rows: [[String?]] = []
        rows.reserveCapacity(Int(rowCount))
        for row in 0..<rowCount {
            rows.append((0..<columnCount).map { column in
                PQgetisnull(result, row, column) == 1 ? nil : String(cString: PQgetvalue(result, row, column))
            })
        }
        return Result(columns: columns, rows: rows, commandTag: String(cString: PQcmdStatus(result)))
    }

    /// Asks the server at `conninfo` whether it accepts connections, without logging in.
    public static func ping(conninfo: String) -> Bool {
        PQping(conninfo) == PQPING_OK
    }
}

/// Holds the notice handler where libpq's C callback can reach it.
private final class NoticeBox {
    var handler: ((PostgresError) -> Void)?
}

extension PGConnection {
    /// Quotes `text` as an SQL string literal for this connection's encoding.
    public func literal(_ text: String) throws -> String {
        guard let quoted = PQescapeLiteral(handle, text, text.utf8.count) else { throw connectionFailure() }
        defer { PQfreemem(quoted) }
        return String(cString: quoted)
    }
}

extension PGConnection {
    /// A NOTIFY delivered to this connection.
    public struct Notification: Equatable, Sendable {
        public var channel: String
        public var payload: String
        /// The server process of the session that sent it.
        public var senderPID: Int32
    }

    /// Waits up to `timeout` seconds for a notification on a channel this connection LISTENs to.
    public func waitForNotification(timeout: Double) throws -> Notification? {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: .milliseconds(Int64(timeout * 1000)))
        while true {
            guard PQconsumeInput(handle) == 1 else { throw connectionFailure() }
            if let raw = PQnotifies(handle) {
                defer { PQfreemem(raw) }
                return Notification(
                    channel: String(cString: raw.pointee.relname), payload: String(cString: raw.pointee.extra),
                    senderPID: raw.pointee.be_pid)
            }
            let remaining = deadline - clock.now
            guard remaining > .zero else { return nil }
            var descriptor = pollfd(fd: PQsocket(handle), events: Int16(POLLIN), revents: 0)
            let milliseconds = Int32(remaining.components.seconds * 1000 + remaining.components.attoseconds / 1_000_000_000_000_000)
            _ = poll(&descriptor, 1, max(1, milliseconds))
        }
    }
}
