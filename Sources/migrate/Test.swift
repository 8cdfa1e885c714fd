import ArgumentParser
import Foundation
import Freshet

struct Test: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "test",
        abstract: "Run the SQL tests in fresh migrated databases, then check the down-and-up round trip.",
        discussion: "Without --url it starts a disposable cluster and removes it afterwards.")

    @Option(help: "Migrations directory (default: $MIGRATIONS_DIR, then migrations/).")
    var dir: String?

    @Option(help: "A server to create disposable databases on; without it, a disposable cluster.")
    var url: String?

    @Option(help: "Directory of pgTAP files.")
    var tests = "Tests/sql"

    @Flag(help: "Build the test databases with CREATE EXTENSION freshet CASCADE (installed by `make install-extension`).")
    var `extension` = false

    @Flag(name: .shortAndLong, help: "Print notices and cluster details.")
    var verbose = false

    func run() throws {
        let global = try GlobalOptions.parse(dir.map { ["--dir", $0] } ?? [])
        let runner = SQLTestRunner(
            directory: try global.loadDirectory(), testsDirectory: tests,
            reporter: Reporter(verbosity: verbose ? .verbose : .normal), throughExtension: `extension`)
        let summary = try runner.run(url: url)
        if summary.failed > 0 { throw ExitCode.failure }
    }
}
