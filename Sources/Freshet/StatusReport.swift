import Foundation

/// Renders `migrate status` as a table or as JSON.
public enum StatusReport {
    public static func table(_ entries: [MigrationStatus]) -> String {
        guard !entries.isEmpty else { return "no migrations" }
        // One byte buffer: joining strings costs a few allocations a line, which 1,000 lines feel.
        var table: [UInt8] = []
        table.reserveCapacity(entries.count * 96 + 256)
        func append(_ text: String) { table.append(contentsOf: text.utf8) }
        func append(_ text: String, paddedTo width: Int) {
            append(text)
            table.append(contentsOf: repeatElement(UInt8(ascii: " "), count: max(0, width - text.utf8.count)))
        }
        var counts: [MigrationStatus.State: Int] = [:]
        append("state     version              name")
        for entry in entries {
            counts[entry.state, default: 0] += 1
            append("\n")
            append(entry.outOfOrder ? entry.state.rawValue + "*" : entry.state.rawValue, paddedTo: 10)
            append(String(entry.version), paddedTo: 21)
            if !entry.module.isEmpty {
                append(entry.module)
                append("/")
            }
            append(entry.name)
            if let appliedAt = entry.appliedAt {
                append("  (")
                append(appliedAt)
                append(")")
            }
            if entry.downChanged { append("  down file changed since applied") }
            if let error = entry.error {
                append("\n          error: ")
                append(String(error.split(separator: "\n").first ?? ""))
            }
        }
        let summary = [MigrationStatus.State.applied, .pending, .changed, .missing, .running, .failed]
            .compactMap { state in counts[state].map { "\($0) \(state.rawValue)" } }
        append("\n" + summary.joined(separator: ", "))
        let modules = moduleVersions(entries)
        if !modules.isEmpty {
            append("\nmodules: " + modules.map { "\($0.module) \($0.version.currentVersion.map(String.init) ?? "none")" }.joined(separator: ", "))
        }
        if entries.contains(where: { $0.outOfOrder }) {
            append("\n* older than the newest applied migration: `up` needs --allow-out-of-order")
        }
        return String(decoding: table, as: UTF8.self)
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
            /// Each module's versions, by module name; empty for a flat directory.
            public var modules: [String: ModuleVersion] = [:]
        }

        /// Where one module stands.
        public struct ModuleVersion: Codable, Equatable, Sendable {
            /// The module's newest applied version, or nil when none is.
            public var currentVersion: Int64?
            /// The newest version in the module's folder.
            public var latestVersion: Int64?
        }

        /// The database, as `target:` prints it, without secrets.
        public var target: String
        public var summary: Summary
        public var migrations: [MigrationStatus]
    }

    /// Each module's current and latest version, in the order the modules first appear.
    static func moduleVersions(_ entries: [MigrationStatus]) -> [(module: String, version: Document.ModuleVersion)] {
        var order: [String] = []
        var versions: [String: Document.ModuleVersion] = [:]
        for entry in entries where !entry.module.isEmpty {
            if versions[entry.module] == nil { order.append(entry.module) }
            var version = versions[entry.module] ?? Document.ModuleVersion()
            if entry.isRecorded { version.currentVersion = max(version.currentVersion ?? .min, entry.version) }
            if entry.state != .missing { version.latestVersion = max(version.latestVersion ?? .min, entry.version) }
            versions[entry.module] = version
        }
        return order.map { ($0, versions[$0]!) }
    }

    public static func json(_ entries: [MigrationStatus], target: String) throws -> String {
        let counts = Dictionary(grouping: entries, by: \.state.rawValue).mapValues(\.count)
        let summary = Document.Summary(
            counts: counts,
            currentVersion: entries.filter { $0.state != .pending }.map(\.version).max(),
            latestVersion: entries.filter { $0.state != .missing }.map(\.version).max(),
            needsAttention: entries.contains(where: \.needsAttention),
            modules: Dictionary(uniqueKeysWithValues: moduleVersions(entries).map { ($0.module, $0.version) }))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let document = Document(target: target, summary: summary, migrations: entries)
        return String(decoding: try encoder.encode(document), as: UTF8.self)
    }
}
