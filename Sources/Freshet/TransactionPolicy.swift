import Foundation

/// Decides whether a script may run inside the runner's transaction, before anything runs.
public enum TransactionPolicy {
    /// The first-line directive that makes the runner execute a file statement by statement, outside a transaction.
    public static let noTransactionDirective = "-- migrate:no-transaction"

    /// Whether the first line of `sql` is the no-transaction directive.
    public static func hasNoTransactionDirective(_ sql: String) -> Bool {
        directiveLine(sql).map(normalizeDirective) == normalizeDirective(noTransactionDirective)
    }

    /// Refuses unknown `-- migrate:` directives and statements that cannot run where the file would run them.
    public static func check(_ script: MigrationScript) throws {
        if let line = directiveLine(script.sql), normalizeDirective(line).hasPrefix("--migrate:"),
            !hasNoTransactionDirective(script.sql)
        {
            throw MigrateError.unknownDirective(file: script.fileName, directive: line)
        }
        guard !script.isNonTransactional else { return }
        for statement in SQLStatementSplitter.split(script.sql) {
            let location = SourceLocation(utf8Offset: statement.utf8Offset, in: script.sql)
            if let what = needsNoTransaction(statement.keywords) {
                throw MigrateError.needsNoTransaction(
                    file: script.fileName, line: location.line, statement: what)
            }
            if let what = transactionControl(statement.keywords) {
                throw MigrateError.transactionControlInTransactionalFile(
                    file: script.fileName, line: location.line, statement: what)
            }
        }
    }

    /// Names the statement when PostgreSQL refuses to run it inside a transaction block.
    public static func needsNoTransaction(_ words: [String]) -> String? {
        guard let first = words.first else { return nil }
        let second = words.dropFirst().first
        switch first {
        case "VACUUM":
            return "VACUUM"
        case "ALTER" where second == "SYSTEM":
            return "ALTER SYSTEM"
        case "ALTER" where second == "TABLE" && words.contains("DETACH") && words.last == "CONCURRENTLY":
            return "ALTER TABLE ... DETACH PARTITION ... CONCURRENTLY"
        case "ALTER" where second == "DATABASE" && words.contains("TABLESPACE") && !words.contains("RESET"):
            return "ALTER DATABASE ... SET TABLESPACE"
        case "CREATE", "DROP":
            let objects = words.dropFirst().drop { $0 == "UNIQUE" }
            if objects.first == "INDEX" && objects.dropFirst().first == "CONCURRENTLY" {
                return "\(first) INDEX CONCURRENTLY"
            }
            if let object = objects.first, ["DATABASE", "TABLESPACE", "SUBSCRIPTION"].contains(object) {
                return "\(first) \(object)"
            }
            return nil
        case "REINDEX":
            if words.contains("CONCURRENTLY") { return "REINDEX ... CONCURRENTLY" }
            if words.contains("SYSTEM") || words.contains("DATABASE") { return "REINDEX DATABASE/SYSTEM" }
            return nil
        default:
            return nil
        }
    }

    /// Names a statement that would end or nest the runner's own transaction.
    public static func transactionControl(_ words: [String]) -> String? {
        guard let first = words.first else { return nil }
        switch first {
        case "BEGIN", "COMMIT", "END", "ABORT":
            return first
        case "START" where words.dropFirst().first == "TRANSACTION":
            return "START TRANSACTION"
        case "ROLLBACK" where !words.contains("TO"):
            return "ROLLBACK"
        case "PREPARE" where words.dropFirst().first == "TRANSACTION":
            return "PREPARE TRANSACTION"
        default:
            return nil
        }
    }

    private static func directiveLine(_ sql: String) -> String? {
        sql.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false).first.map {
            $0.trimmingCharacters(in: .whitespaces)
        }
    }

    private static func normalizeDirective(_ line: String) -> String {
        line.filter { !$0.isWhitespace }.lowercased()
    }
}
