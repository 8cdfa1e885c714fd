import Foundation
import Testing

@testable import Freshet
import FreshetTestSupport

/// One disposable cluster for the whole test process; its watchdog removes it when the process ends.
enum TestCluster {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var cluster: PostgresCluster?

    static func shared() throws -> PostgresCluster {
        try lock.withLock {
            if let cluster { return cluster }
            let created = try PostgresCluster.disposable()
            cluster = created
            return created
        }
    }
}

/// Collects reporter lines from any thread.
final class LineCollector: @unchecked Sendable {
    private let lock = NSLock()
    private var collected: [String] = []

    var lines: [String] { lock.withLock { collected } }
    var text: String { lines.joined(separator: "\n") }

    func append(_ line: String) { lock.withLock { collected.append(line) } }

    var reporter: Reporter { Reporter(verbosity: .verbose) { [self] line in append(line) } }
}

/// A fresh, empty database in the shared cluster, dropped when released.
final class TestDatabase {
    let cluster: PostgresCluster
    let name: String
    let output = LineCollector()

    init(template: String? = nil) throws {
        cluster = try TestCluster.shared()
        name = try cluster.createUniqueDatabase(prefix: "it", template: template)
    }

    deinit { try? cluster.dropDatabase(name) }

    var conninfo: String { cluster.conninfo(database: name) }
    var url: String { cluster.url(database: name) }

    func connect() throws -> PGConnection { try PGConnection(conninfo: conninfo) }

    func migrator(_ fixture: MigrationFixture, _ configure: (inout MigratorOptions) -> Void = { _ in }) throws -> Migrator {
        var options = MigratorOptions()
        options.lockWait = 10
        configure(&options)
        return Migrator(connection: try connect(), directory: try fixture.directory(), reporter: output.reporter, options: options)
    }

    func scalar(_ sql: String) throws -> String? { try connect().scalar(sql) }

    func count(_ sql: String) throws -> Int { Int(try scalar(sql) ?? "") ?? -1 }

    /// A new database restored from a `pg_dump --format=custom` of this one with `pg_restore
    /// --exit-on-error`; `environment` reaches pg_restore (PGOPTIONS, for a restore as replica).
    func restoredCopy(environment: [String: String] = [:]) throws -> TestDatabase {
        let dump = NSTemporaryDirectory() + "freshet-dump-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dump) }
        let installation = cluster.installation
        let dumped = try ProcessRunner.run(installation.program("pg_dump"), ["--format=custom", "--file=\(dump)", "--dbname=\(conninfo)"])
        guard dumped.status == 0 else { throw MigrateError.cluster("pg_dump failed: \(dumped.output)") }
        let restored = try TestDatabase()
        let outcome = try ProcessRunner.run(
            installation.program("pg_restore"), ["--exit-on-error", "--dbname=\(restored.conninfo)", dump], environment: environment)
        guard outcome.status == 0 else { throw MigrateError.cluster("pg_restore failed: \(outcome.output)") }
        return restored
    }

    func tableExists(_ name: String) throws -> Bool { try scalar("SELECT to_regclass('\(name)') IS NOT NULL") == "t" }

    /// Every event as `version:action`, in order.
    func events() throws -> [String] {
        try connect().query("SELECT version || ':' || action FROM migrate.events ORDER BY id").rows.map { $0[0]! }
    }
}

/// The `migrate` binary built next to the test bundle.
enum MigrateBinary {
    static var path: String {
        get throws {
            var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
            for _ in 0..<4 {
                let candidate = directory.appendingPathComponent("migrate").path
                if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
                directory.deleteLastPathComponent()
            }
            throw MigrateError.cluster("the migrate binary is not built next to the tests: run `swift build --build-tests` first")
        }
    }

    static func run(_ arguments: [String], environment: [String: String] = [:]) throws -> ProcessRunner.Outcome {
        try ProcessRunner.run(path, arguments, environment: ["NO_COLOR": "1"].merging(environment) { $1 })
    }

    static func start(_ arguments: [String], environment: [String: String] = [:]) throws -> ProcessRunner.Spawned {
        try ProcessRunner.start(path, arguments, environment: ["NO_COLOR": "1"].merging(environment) { $1 })
    }
}

/// Waits up to `timeout` seconds for `condition`, polling.
func eventually(timeout: Double = 10, _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if try condition() { return true }
        usleep(50_000)
    }
    return try condition()
}
