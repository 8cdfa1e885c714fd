import Foundation

/// Where the PostgreSQL server programs live and which extensions are installed beside them.
public struct PostgresInstallation: Sendable {
    public let binDirectory: String

    /// Finds the newest server installation: `PG_BINDIR`, then `/usr/lib/postgresql/*/bin`, then `pg_config --bindir`.
    public static func find(environment: [String: String] = ProcessInfo.processInfo.environment) throws
        -> PostgresInstallation
    {
        var candidates: [String] = []
        if let explicit = environment["PG_BINDIR"] { candidates.append(explicit) }
        let root = "/usr/lib/postgresql"
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        candidates += versions.compactMap(Int.init).sorted(by: >).map { "\(root)/\($0)/bin" }
        if let bindir = try? ProcessRunner.run("/usr/bin/env", ["pg_config", "--bindir"]), bindir.status == 0 {
            candidates.append(bindir.output.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: "\($0)/initdb") }) else {
            throw MigrateError.cluster(
                "no PostgreSQL server programs found (looked for initdb in \(candidates.joined(separator: ", "))); "
                    + "run `make deps` or set PG_BINDIR")
        }
        return PostgresInstallation(binDirectory: found)
    }

    public func program(_ name: String) -> String { "\(binDirectory)/\(name)" }

    /// Whether pg_cron's library is installed for this server, so it can be preloaded.
    public var hasPgCron: Bool {
        FileManager.default.fileExists(atPath: "\(binDirectory)/../lib/pg_cron.so")
    }
}
