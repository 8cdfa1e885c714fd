import CLibPQ

/// An error reported by the PostgreSQL server, with every diagnostic field libpq exposes.
public struct PostgresError: Error, CustomStringConvertible, Sendable {
    public var severity: String
    public var sqlState: String
    public var message: String
    public var detail: String?
    public var hint: String?
    /// One-based character offset into the query text that was sent, when the server knows it.
    public var position: Int?
    /// Position inside an internally generated query (PL/pgSQL, SQL functions).
    public var internalPosition: Int?
    public var internalQuery: String?
    public var context: String?

    public init(
        severity: String = "ERROR", sqlState: String, message: String, detail: String? = nil,
        hint: String? = nil, position: Int? = nil, internalPosition: Int? = nil,
        internalQuery: String? = nil, context: String? = nil
    ) {
        self.severity = severity
        self.sqlState = sqlState
        self.message = message
        self.detail = detail
        self.hint = hint
        self.position = position
        self.internalPosition = internalPosition
        self.internalQuery = internalQuery
        self.context = context
    }

    init(result: OpaquePointer) {
        // libpq defines the field codes as character-literal macros, which Swift does not import.
        func field(_ code: Character) -> String? {
            guard let raw = PQresultErrorField(result, Int32(code.asciiValue!)) else { return nil }
            return String(cString: raw)
        }
        let fallback = String(cString: PQresultErrorMessage(result))
            .trimmingCharacters(in: .whitespacesAndNewlines)
        self.init(
            severity: field("V") ?? field("S") ?? "ERROR",
            sqlState: field("C") ?? "XX000",
            message: field("M") ?? fallback,
            detail: field("D"),
            hint: field("H"),
            position: field("P").flatMap(Int.init),
            internalPosition: field("p").flatMap(Int.init),
            internalQuery: field("q"),
            context: field("W")
        )
    }

    /// True for SQLSTATE 55P03, raised when `lock_timeout` expires.
    public var isLockTimeout: Bool { sqlState == "55P03" }

    public var description: String {
        var lines = ["\(severity) \(sqlState): \(message)"]
        if let detail { lines.append("DETAIL: \(detail)") }
        if let hint { lines.append("HINT: \(hint)") }
        if let context { lines.append("CONTEXT: \(context)") }
        return lines.joined(separator: "\n")
    }
}

/// A failure to reach or talk to the server that is not an SQL error.
public struct ConnectionError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var target: String
    /// The connection was up and went away: the server stopped, restarted or ended the backend.
    public var lost = false
    /// What the runner was doing when it went away, such as the file it was running.
    public var during: String?

    public init(message: String, target: String, lost: Bool = false, during: String? = nil) {
        self.message = message
        self.target = target
        self.lost = lost
        self.during = during
    }

    /// What happened, in one line, without the runner's advice: what a long-running process logs.
    public var summary: String {
        // libpq's message runs over several tab-indented lines; one line reads better.
        let oneLine = message.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
            .joined(separator: " ")
        guard lost else { return "cannot connect to \(target): \(oneLine)" }
        return "lost the connection to \(target)\(during.map { " while running \($0)" } ?? ""): \(oneLine)"
    }

    public var description: String {
        guard lost else {
            return "cannot connect to \(target): \(message)\n"
                + "Check --url, DATABASE_URL or the PG* variables, or run `migrate wait` until the server is up."
        }
        return summary + "\n"
            + "The server rolled back the transaction that was open; a no-transaction file may have stopped partway "
            + "(`migrate status` shows it as running). Run the command again once the server is back (`migrate wait`)."
    }
}
