import ArgumentParser
import Freshet

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check files against migrate.sum and, unless --offline, against the database's history.")

    @OptionGroup var global: GlobalOptions

    @Flag(help: "Check only migrate.sum, with no database.")
    var offline = false

    @Flag(help: "Accept pending files older than the newest applied migration.")
    var allowOutOfOrder = false

    func run() throws {
        let directory = try global.loadDirectory()
        // Online, a missing or stale migrate.sum is one finding among the history's.
        var sumProblems: [String] = []
        do {
            try SumFile.verify(directory: directory)
        } catch MigrateError.verificationFailed(let problems) where !offline {
            sumProblems = problems
        }
        if !offline {
            var options = MigratorOptions()
            options.allowOutOfOrder = allowOutOfOrder
            try Migrator(connection: global.connect(), directory: directory, reporter: global.reporter, options: options)
                .verify(alsoReporting: sumProblems)
        }
        global.reporter.info("verified \(directory.migrations.count) migrations\(offline ? " against \(SumFile.fileName)" : "")")
    }
}
