import Foundation

/// How one script runs: in the runner's transaction, in its own `BEGIN ... COMMIT`, or statement by statement.
public struct ExecutionPlan: Equatable, Sendable {
    public enum Mode: Equatable, Sendable {
        /// The runner wraps the file and its history row in one transaction.
        case transaction
        /// The file's single top-level `BEGIN ... COMMIT` is the transaction; the history row commits inside it.
        case ownWrapper(beginLine: Int, commitLine: Int)
        /// Statement by statement, outside the runner's transaction, with progress in `migrate.history`.
        case noTransaction(NoTransactionReason)
    }

    public enum NoTransactionReason: Equatable, Sendable {
        /// `-- migrate:no-transaction`, or dbmate's `transaction:false`.
        case directive
        /// Several `BEGIN ... COMMIT` blocks, or statements outside the one block.
        case ownTransactions(blocks: Int, outside: Int)
        /// Every statement is one PostgreSQL refuses inside a transaction, such as CREATE INDEX CONCURRENTLY.
        case onlyNonTransactional(String)
    }

    public var mode: Mode
    /// What runs on its own: the file, with an own wrapper's COMMIT blanked so the history row joins its transaction.
    public var sql: String
    /// What runs inside a transaction the runner opened (--single-transaction, replays): both wrapper ends blanked.
    public var sqlInsideRunnerTransaction: String

    public var runsInTransaction: Bool {
        if case .noTransaction = mode { return false }
        return true
    }

    /// One line saying what the runner does with the file, when it departs from the default.
    public var explanation: String? {
        switch mode {
        case .transaction, .noTransaction(.directive):
            return nil
        case .ownWrapper(let begin, let commit):
            return "its own BEGIN (line \(begin)) ... COMMIT (line \(commit)) is the migration's transaction; "
                + "the history row commits inside it"
        case .noTransaction(.ownTransactions(let blocks, let outside)):
            let blockText = blocks == 1 ? "1 BEGIN ... COMMIT block" : "\(blocks) BEGIN ... COMMIT blocks"
            return "it manages its own transactions (\(blockText), \(outside) statement\(outside == 1 ? "" : "s") outside them): "
                + "running it statement by statement, with its progress in migrate.history"
        case .noTransaction(.onlyNonTransactional(let what)):
            return "\(what) cannot run inside a transaction: running the file outside one"
        }
    }
}

/// Decides how each script runs, and refuses what could not run as written, before anything runs.
public enum TransactionPolicy {
    /// The first-line directive that makes the runner execute a file statement by statement, outside a transaction.
    public static let noTransactionDirective = "-- migrate:no-transaction"

    /// The first-line directive of a down file whose drops lose nothing: `-- migrate:derived <how it is rebuilt>`.
    public static let derivedDirective = "-- migrate:derived"

    /// What a file's first line says rebuilds the data it drops, when it is the derived directive.
    public static func derivedDataReason(_ sql: String) -> String? {
        guard let line = directiveLine(sql), normalizeDirective(line).hasPrefix("--migrate:derived") else { return nil }
        let afterDashes = line.dropFirst(2).trimmingCharacters(in: .whitespaces)
        return String(afterDashes.dropFirst("migrate:derived".count)).trimmingCharacters(in: .whitespaces)
    }

    /// Whether the first line of `sql` is the no-transaction directive.
    public static func hasNoTransactionDirective(_ sql: String) -> Bool {
        // Byte by byte: `status` asks this of every file, and most files start with no comment at all.
        let expected = Array("--migrate:no-transaction".utf8)
        var matched = 0
        for byte in sql.utf8 {
            if byte == UInt8(ascii: "\n") { break }
            if byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\r") { continue }
            let lower = byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte
            guard matched < expected.count, lower == expected[matched] else { return false }
            matched += 1
        }
        return matched == expected.count
    }

    /// Refuses what `plan` refuses.
    public static func check(_ script: MigrationScript) throws {
        _ = try plan(script)
    }

    /// How `script` runs; throws every reason it cannot run as written (several at once as `.several`).
    public static func plan(_ script: MigrationScript) throws -> ExecutionPlan {
        let file = script.fileName
        if let reason = derivedDataReason(script.sql) {
            guard script.direction == .down else {
                throw MigrateError.misusedDirective(file: file, reason: "`\(derivedDirective)` belongs in a down file, which is what drops data")
            }
            guard !reason.isEmpty else {
                throw MigrateError.misusedDirective(file: file, reason: "`\(derivedDirective)` must say how what the file drops is rebuilt")
            }
        } else if !script.isSection, let line = directiveLine(script.sql), normalizeDirective(line).hasPrefix("--migrate:"),
            !hasNoTransactionDirective(script.sql)
        {
            throw MigrateError.unknownDirective(file: file, directive: line)
        }
        guard !script.isNonTransactional else {
            return ExecutionPlan(mode: .noTransaction(.directive), sql: script.sql, sqlInsideRunnerTransaction: script.sql)
        }
        let statements = SQLStatementSplitter.split(script.sql)
        func line(_ index: Int) -> Int {
            script.fileLocation(SourceLocation(utf8Offset: statements[index].utf8Offset, in: script.sql)).line
        }
        var problems: [MigrateError] = []
        var blocks: [(begin: Int, end: Int, committed: Bool)] = []
        var open: Int?
        var outside = 0
        var nonTransactional: [(index: Int, what: String)] = []
        for (index, statement) in statements.enumerated() {
            let words = statement.keywords
            switch transactionControl(words) {
            case "BEGIN", "START TRANSACTION":
                if let open {
                    problems.append(.managedTransaction(
                        file: file, line: line(index), reason: "BEGIN inside the transaction opened at line \(line(open))"))
                } else {
                    open = index
                }
            case "COMMIT", "END", "ROLLBACK", "ABORT":
                if let begin = open {
                    blocks.append((begin, index, words.first == "COMMIT" || words.first == "END"))
                    open = nil
                } else {
                    problems.append(.managedTransaction(
                        file: file, line: line(index), reason: "\(words.first!) with no transaction open"))
                }
            case let other?:
                problems.append(.transactionControlInTransactionalFile(file: file, line: line(index), statement: other))
            case nil:
                if let what = needsNoTransaction(words) {
                    if let open {
                        problems.append(.managedTransaction(
                            file: file, line: line(index),
                            reason: "\(what) cannot run inside the transaction the file opens at line \(line(open))"))
                    } else {
                        nonTransactional.append((index, what))
                    }
                }
                if open == nil { outside += 1 }
            }
        }
        if let open {
            problems.append(.managedTransaction(
                file: file, line: line(open), reason: "this BEGIN opens a transaction the file never commits"))
        }
        if blocks.isEmpty && !nonTransactional.isEmpty && nonTransactional.count < statements.count {
            problems += nonTransactional.map { .needsNoTransaction(file: file, line: line($0.index), statement: $0.what) }
        }
        try MigrateError.throwIfAny(problems)

        if blocks.isEmpty {
            if nonTransactional.isEmpty {
                return ExecutionPlan(mode: .transaction, sql: script.sql, sqlInsideRunnerTransaction: script.sql)
            }
            var names: [String] = []
            for (_, what) in nonTransactional where !names.contains(what) { names.append(what) }
            return ExecutionPlan(
                mode: .noTransaction(.onlyNonTransactional(names.joined(separator: ", "))), sql: script.sql,
                sqlInsideRunnerTransaction: script.sql)
        }
        if blocks.count == 1, outside == 0, let block = blocks.first, block.committed {
            let withoutCommit = blank(statements[block.end], in: script.sql)
            return ExecutionPlan(
                mode: .ownWrapper(beginLine: line(block.begin), commitLine: line(block.end)), sql: withoutCommit,
                sqlInsideRunnerTransaction: blank(statements[block.begin], in: withoutCommit))
        }
        return ExecutionPlan(
            mode: .noTransaction(.ownTransactions(blocks: blocks.count, outside: outside)), sql: script.sql,
            sqlInsideRunnerTransaction: script.sql)
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
            return words.dropFirst().first == "PREPARED" ? "\(first) PREPARED" : first
        case "START" where words.dropFirst().first == "TRANSACTION":
            return "START TRANSACTION"
        case "ROLLBACK" where !words.contains("TO"):
            return words.dropFirst().first == "PREPARED" ? "ROLLBACK PREPARED" : "ROLLBACK"
        case "PREPARE" where words.dropFirst().first == "TRANSACTION":
            return "PREPARE TRANSACTION"
        default:
            return nil
        }
    }

    /// Replaces a statement's characters with spaces, keeping newlines, so positions and lines stay put.
    private static func blank(_ statement: SQLStatement, in sql: String) -> String {
        let utf8 = Array(sql.utf8)
        let end = statement.utf8Offset + statement.text.utf8.count
        let blanked = String(decoding: utf8[statement.utf8Offset..<end], as: UTF8.self).unicodeScalars.map {
            $0 == "\n" ? "\n" : " "
        }.joined()
        return String(decoding: utf8[..<statement.utf8Offset], as: UTF8.self) + blanked
            + String(decoding: utf8[end...], as: UTF8.self)
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
