import ArgumentParser
import Freshet

struct Baseline: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "baseline",
        abstract: "Adopt a database another tool or a person migrated: record its migrations as applied.",
        discussion: """
            Without VERSION, reads golang-migrate's schema_migrations (version, dirty) or dbmate's \
            schema_migrations (version) and records what it says was applied; a dirty golang-migrate \
            version is refused. With VERSION, records every migration up to it, as Flyway's baseline \
            does. Nothing runs; each recorded migration gets today's checksums and a `baselined` event.
            """)

    @OptionGroup var global: GlobalOptions

    @Option(help: "How long to wait for another runner's lock.")
    var lockWait = "60s"

    @Option(help: "The other tool's history table.")
    var table = "schema_migrations"

    @Flag(help: "Print what would be recorded without changing anything.")
    var dryRun = false

    @Argument(help: "The version the database is at, for a database migrated by hand.")
    var version: Int64?

    func run() throws {
        var options = MigratorOptions()
        options.lockWait = try PostgresDuration.seconds(lockWait)
        options.dryRun = dryRun
        try global.migrator(options).baseline(version: version, table: table)
    }
}
