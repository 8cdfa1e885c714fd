import Foundation

/// Renders `migrate status` as a table or as JSON.
public enum StatusReport {
    public static func table(_ entries: [MigrationStatus]) -> String {
        guard !entries.isEmpty else { return "no migrations" }
        var lines = ["state     version              name"]
        for entry in entries {
            var state = entry.state.rawValue
            if entry.outOfOrder { state += "*" }
            var line = state.padding(toLength: 10, withPad: " ", startingAt: 0)
                + String(entry.version).padding(toLength: 21, withPad: " ", startingAt: 0) + entry.name
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

    public static func json(_ entries: [MigrationStatus]) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return String(decoding: try encoder.encode(entries), as: UTF8.self)
    }
}
