import Foundation

/// Renders `migrate status` as a table or as JSON.
public enum StatusReport {
    public static func table(_ entries: [MigrationStatus]) -> String {
        guard !entries.isEmpty else { return "no migrations" }
        var lines = ["state     version              name"]
        for entry in entries {
            var state = entry.state.rawValue
            if entry.outOfOrder { state += "*" }
            var line = padded(state, 10) + padded(String(entry.version), 21) + entry.name
            if let appliedAt = entry.appliedAt { line += "  (\(appliedAt))" }
            if entry.downChanged { line += "  down file changed since applied" }
            if let error = entry.error { line += "\n          error: \(error.split(separator: "\n").first ?? "")" }
            lines.append(line)
        }
        let counts = Dictionary(grouping: entries, by: \.state).mapValues(\.count)
        let summary = [MigrationStatus.State.applied, .pending, .changed, .missing, .running, .failed]
            .compactMap { state in counts[state].map { "\($0) \(state.rawValue)" } }
            .joined(separator: ", ")
        lines.append(summary)
        if entries.contains(where: \.outOfOrder) {
            lines.append("* older than the newest applied migration: `up` needs --allow-out-of-order")
        }
        return lines.joined(separator: "\n")
    }

    /// NSString's padding costs more than the rest of a 1,000-line table.
    private static func padded(_ text: String, _ width: Int) -> String {
        text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
    }

    /// The JSON document `status --json` prints.
    public struct Document: Codable, Equatable, Sendable {
        public struct Summary: Codable, Equatable, Sendable {
            /// How many migrations are in each state, states with none left out.
            public var counts: [String: Int]
            /// The newest applied version, or nil on an empty database.
            public var currentVersion: Int64?
            /// The newest version in the directory.
            public var latestVersion: Int64?
            /// Whether `status --exit-code` exits 3.
            public var needsAttention: Bool
        }

        /// The database, as `target:` prints it, without secrets.
        public var target: String
        public var summary: Summary
        public var migrations: [MigrationStatus]
    }

    public static func json(_ entries: [MigrationStatus], target: String) throws -> String {
        let counts = Dictionary(grouping: entries, by: \.state.rawValue).mapValues(\.count)
        let summary = Document.Summary(
            counts: counts,
            currentVersion: entries.filter { $0.state != .pending }.map(\.version).max(),
            latestVersion: entries.filter { $0.state != .missing }.map(\.version).max(),
            needsAttention: entries.contains(where: \.needsAttention))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let document = Document(target: target, summary: summary, migrations: entries)
        return String(decoding: try encoder.encode(document), as: UTF8.self)
    }
}
