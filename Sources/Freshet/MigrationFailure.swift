/// Where and why a migration failed, with the server's diagnostics and the offending line.
public struct MigrationFailure: Error, CustomStringConvertible, Sendable {
    public var file: String
    public var location: SourceLocation?
    /// One-based index of the failing statement, when the file was run (or replayed) statement by statement.
    public var statementIndex: Int?
    public var statementCount: Int?
    public var lineText: String?
    public var error: PostgresError
    /// Extra findings, such as the sessions that held the locks this migration waited for.
    public var note: String?
    /// False when the file ran outside a transaction and earlier statements stay applied.
    public var rolledBack = true
    public var version: Int64?

    /// Records where in the script the failure is: `local` counts lines of the script's text, the
    /// location shown counts lines of its file.
    public mutating func place(_ local: SourceLocation, in script: MigrationScript) {
        lineText = local.lineText(in: script.sql)
        location = script.fileLocation(local)
    }

    /// One line for the event log: where, SQLSTATE and message.
    public var summary: String {
        let place = location.map { ":\($0)" } ?? ""
        let statement = statementIndex.map { " (statement \($0))" } ?? ""
        return "\(file)\(place)\(statement): \(error.sqlState) \(error.message)"
    }

    public var description: String {
        var head = file
        if let location { head += ":\(location.line):\(location.column)" }
        var lines = ["\(head): \(error.severity) \(error.sqlState): \(error.message)"]
        if let statementIndex {
            lines.append("  in statement \(statementIndex)\(statementCount.map { " of \($0)" } ?? "")")
        }
        if let lineText, let location {
            lines.append("  \(location.line) | \(lineText)")
            let pad = String(repeating: " ", count: String(location.line).count)
            let caretPad = String(lineText.prefix(max(0, location.column - 1)).map { $0 == "\t" ? "\t" : " " })
            lines.append("  \(pad) | \(caretPad)^")
        }
        if let detail = error.detail { lines.append("  DETAIL: \(detail)") }
        if let hint = error.hint { lines.append("  HINT: \(hint)") }
        if let context = error.context { lines.append("  CONTEXT: \(context.replacingOccurrences(of: "\n", with: "\n           "))") }
        if let note { lines.append("  \(note)") }
        if rolledBack {
            lines.append("Nothing from \(file) was kept: fix it and run the command again.")
        } else {
            lines.append(
                "\(file) ran outside a transaction, so the statements before the failing one stay applied. "
                    + "Fix the database, then run `migrate repair \(version.map(String.init) ?? "VERSION")`.")
        }
        return lines.joined(separator: "\n")
    }
}
