import Foundation

/// `migrate test`: pgTAP files each in a fresh migrated database, then the down-and-up round trip.
public struct SQLTestRunner {
    /// How many assertions passed and failed.
    public struct Summary: Equatable, Sendable {
        public var passed = 0
        public var failed = 0

        public var closingLine: String { "\(passed) passed, \(failed) failed" }
    }

    let directory: MigrationDirectory
    let testsDirectory: String
    let reporter: Reporter
    /// Build the databases with `CREATE EXTENSION freshet CASCADE` instead of `migrate up`, and
    /// skip the runner's round trip: the same tests, on the extension path.
    let throughExtension: Bool

    public init(directory: MigrationDirectory, testsDirectory: String, reporter: Reporter, throughExtension: Bool = false) {
        self.directory = directory
        self.testsDirectory = testsDirectory
        self.reporter = reporter
        self.throughExtension = throughExtension
    }

    /// Runs everything against the server at `url`, or against a disposable cluster when `url` is nil.
    public func run(url: String?) throws -> Summary {
        if let url {
            return try run(on: Server(conninfo: url, installation: try PostgresInstallation.find()))
        }
        let cluster = try PostgresCluster.disposable()
        defer { cluster.stop() }
        reporter.detail("disposable cluster in \(cluster.rootDirectory)")
        return try run(on: Server(conninfo: cluster.conninfo(database: "postgres"), installation: cluster.installation))
    }

    /// A server the runner may create and drop databases on.
    struct Server {
        var conninfo: String
        var installation: PostgresInstallation

        func conninfo(_ database: String) -> String { ConnectionTarget.conninfo(conninfo, database: database) }

        func create(_ name: String, template: String? = nil) throws {
            let admin = try PGConnection(conninfo: conninfo)
            let copy = template.map { " TEMPLATE \(quote($0))" } ?? ""
            try admin.execute("CREATE DATABASE \(quote(name))\(copy)")
        }

        func drop(_ name: String) {
            _ = try? PGConnection(conninfo: conninfo).execute("DROP DATABASE IF EXISTS \(quote(name)) WITH (FORCE)")
        }

        private func quote(_ name: String) -> String { "\"\(name)\"" }
    }

    private func run(on server: Server) throws -> Summary {
        let suffix = "\(getpid())_\(Int.random(in: 0..<1_000_000))"
        let template = "freshet_template_\(suffix)"
        var summary = Summary()
        try server.create(template)
        defer { server.drop(template) }
        if throughExtension {
            try PGConnection(conninfo: server.conninfo(template)).execute("CREATE EXTENSION \(ExtensionBundle.umbrella) CASCADE")
        } else {
            try migrate(server.conninfo(template), up: true)
        }
        let migrated = try SchemaSnapshot(conninfo: server.conninfo(template), installation: server.installation)

        let files = try testFiles()
        if files.isEmpty { reporter.always("# no SQL tests in \(testsDirectory)") }
        for file in files {
            let database = "freshet_test_\(suffix)_\(summary.passed + summary.failed)"
            try server.create(database, template: template)
            defer { server.drop(database) }
            summary = try runTestFile(file, conninfo: server.conninfo(database), summary: summary)
        }
        if !throughExtension {
            summary = try checkRoundTrip(server: server, suffix: suffix, migrated: migrated, summary: summary)
        }
        reporter.always(summary.closingLine)
        return summary
    }

    private func testFiles() throws -> [String] {
        guard FileManager.default.fileExists(atPath: testsDirectory) else { return [] }
        return try FileManager.default.contentsOfDirectory(atPath: testsDirectory)
            .filter { $0.hasSuffix(".sql") }.sorted()
            .map { (testsDirectory as NSString).appendingPathComponent($0) }
    }

    private func migrate(_ conninfo: String, up: Bool) throws {
        let connection = try PGConnection(conninfo: conninfo)
        // The round trip runs on a throw-away database, where the seed rows a down drops are meant to go.
        var options = MigratorOptions()
        options.allowDataLoss = true
        let migrator = Migrator(
            connection: connection, directory: directory, reporter: Reporter(verbosity: .quiet) { _ in }, options: options)
        if up { try migrator.up() } else { try migrator.down(.all) }
    }

    /// Runs one pgTAP file and counts its `ok` and `not ok` lines against its plan.
    private func runTestFile(_ path: String, conninfo: String, summary: Summary) throws -> Summary {
        var summary = summary
        let name = (path as NSString).lastPathComponent
        reporter.always("# \(name)")
        let connection = try PGConnection(conninfo: conninfo)
        connection.onNotice = { [reporter] notice in reporter.detail("# \(name): \(notice.message)") }
        guard try connection.scalar("SELECT count(*) FROM pg_available_extensions WHERE name = 'pgtap'") == "1" else {
            throw MigrateError.cluster("pgTAP is not installed on the test server: run `make deps`")
        }
        try connection.execute("CREATE EXTENSION IF NOT EXISTS pgtap")
        let sql = Checksum.normalize(FileManager.default.contents(atPath: path) ?? Data())
        var planned: Int?
        var ran = 0
        // Statement by statement, as psql runs a file, so an error names its line.
        for statement in SQLStatementSplitter.split(sql) {
            let results: [PGConnection.Result]
            do {
                results = try connection.execute(statement.text)
            } catch let error as PostgresError {
                let start = SourceLocation(utf8Offset: statement.utf8Offset, in: sql)
                reporter.always("not ok - \(name):\(start.line) stopped: \(error.sqlState) \(error.message)")
                summary.failed += 1
                return summary
            }
            for row in results.flatMap(\.rows) {
                guard let line = row.first ?? nil else { continue }
                for tapLine in line.split(separator: "\n", omittingEmptySubsequences: false) {
                    reporter.always(String(tapLine))
                    if tapLine.hasPrefix("ok ") {
                        ran += 1
                        summary.passed += 1
                    } else if tapLine.hasPrefix("not ok ") {
                        ran += 1
                        summary.failed += 1
                    } else if tapLine.hasPrefix("1.."), let count = Int(tapLine.dropFirst(3)) {
                        planned = count
                    }
                }
            }
        }
        if let planned, planned != ran {
            reporter.always("not ok - \(name) planned \(planned) tests but ran \(ran)")
            summary.failed += 1
        } else if planned == nil {
            reporter.always("not ok - \(name) has no plan (SELECT plan(n) or no_plan())")
            summary.failed += 1
        }
        return summary
    }

    /// Applies every migration, rolls every one back, applies them again, and compares schemas.
    private func checkRoundTrip(server: Server, suffix: String, migrated: SchemaSnapshot, summary: Summary) throws
        -> Summary
    {
        var summary = summary
        reporter.always("# round trip: up, down to zero, up again")
        let database = "freshet_roundtrip_\(suffix)"
        try server.create(database)
        defer { server.drop(database) }
        let conninfo = server.conninfo(database)
        let empty = try SchemaSnapshot(conninfo: conninfo, installation: server.installation)
        var number = 0
        func check(_ description: String, _ expected: SchemaSnapshot, _ body: () throws -> Void) {
            number += 1
            do {
                try body()
                let actual = try SchemaSnapshot(conninfo: conninfo, installation: server.installation)
                if actual == expected {
                    reporter.always("ok \(number) - \(description)")
                    summary.passed += 1
                } else {
                    reporter.always("not ok \(number) - \(description)")
                    reporter.always(actual.difference(from: expected).split(separator: "\n").map { "#   \($0)" }.joined(separator: "\n"))
                    summary.failed += 1
                }
            } catch {
                reporter.always("not ok \(number) - \(description)")
                reporter.always("\(error)".split(separator: "\n").map { "#   \($0)" }.joined(separator: "\n"))
                summary.failed += 1
            }
        }
        check("every up gives the template's schema", migrated) { try migrate(conninfo, up: true) }
        check("every down leaves the schema of an empty database", empty) { try migrate(conninfo, up: false) }
        check("every up again gives the first up's schema", migrated) { try migrate(conninfo, up: true) }
        return summary
    }
}
