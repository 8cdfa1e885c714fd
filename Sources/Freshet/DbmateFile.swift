/// dbmate's one-file format: a `-- migrate:up` section, then an optional `-- migrate:down` section,
/// each marker optionally followed by `transaction:false`.
public enum DbmateFile {
    /// One section: its text from the marker line on, and where the marker stands in the file.
    public struct Section: Equatable, Sendable {
        public var sql: String
        /// The one-based line of the marker, so errors name lines of the whole file.
        public var firstLine: Int
        /// `transaction:false` on the marker line.
        public var noTransaction: Bool
    }

    /// Whether a line is a dbmate marker, so a `.sql` file holding none is not taken for one.
    public static func containsMarker(_ text: String) -> Bool {
        text.split(separator: "\n", omittingEmptySubsequences: false).contains { marker(in: $0) != nil }
    }

    /// Splits a dbmate file into its sections, refusing what dbmate refuses.
    public static func sections(of text: String, file: String) throws -> (up: Section, down: Section?) {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        var up: Section?
        var down: Section?
        var current: (direction: MigrationScript.Direction, start: Int, noTransaction: Bool)?

        func close(at end: Int) {
            guard let open = current else { return }
            let section = Section(
                sql: lines[open.start..<end].joined(separator: "\n"), firstLine: open.start + 1,
                noTransaction: open.noTransaction)
            if open.direction == .up { up = section } else { down = section }
        }

        for (index, line) in lines.enumerated() {
            guard let (direction, options) = marker(in: line) else {
                if current == nil, !isTrivia(line) {
                    throw refusal(file, index + 1, "statements before `-- migrate:up` belong to no section; move them into one")
                }
                continue
            }
            if (direction == .up && up != nil) || (direction == .down && down != nil) || current?.direction == direction {
                throw refusal(file, index + 1, "a second `-- migrate:\(direction.rawValue)` section; a file holds one of each")
            }
            if direction == .down && current == nil {
                throw refusal(file, index + 1, "`-- migrate:down` comes before `-- migrate:up`")
            }
            if direction == .up && (current != nil || down != nil) {
                throw refusal(file, index + 1, "`-- migrate:up` must come before `-- migrate:down`")
            }
            var noTransaction = false
            for option in options {
                switch option.lowercased() {
                case "transaction:false": noTransaction = true
                case "transaction:true": noTransaction = false
                default:
                    throw refusal(file, index + 1, "unknown option `\(option)`; dbmate knows only transaction:false")
                }
            }
            close(at: index)
            current = (direction, index, noTransaction)
        }
        close(at: lines.count)
        guard let up else { throw refusal(file, 1, "a dbmate file needs a `-- migrate:up` section") }
        return (up, down)
    }

    private static func marker(in line: Substring) -> (MigrationScript.Direction, [Substring])? {
        let trimmed = line.drop { $0 == " " || $0 == "\t" }
        guard trimmed.hasPrefix("--") else { return nil }
        let words = trimmed.dropFirst(2).split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
        switch words.first {
        case "migrate:up": return (.up, Array(words.dropFirst()))
        case "migrate:down": return (.down, Array(words.dropFirst()))
        default: return nil
        }
    }

    private static func isTrivia(_ line: Substring) -> Bool {
        let trimmed = line.trimmingPrefix { $0.isWhitespace }
        return trimmed.isEmpty || trimmed.hasPrefix("--")
    }

    private static func refusal(_ file: String, _ line: Int, _ reason: String) -> MigrateError {
        .malformedDbmateFile(file: file, line: line, reason: reason)
    }
}
