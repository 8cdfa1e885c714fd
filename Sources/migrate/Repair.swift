import ArgumentParser
import Freshet

struct Repair: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "repair",
        abstract: "Clear a failed or interrupted migration, or accept a changed or missing file.",
        discussion: """
            A failed or running no-transaction migration is cleared so the next `up` runs it again, \
            or with --applied recorded as applied. An applied migration whose files changed gets their \
            new checksums; one whose file is missing is forgotten. Every repair is recorded as an event.
            """)

    @OptionGroup var global: GlobalOptions

    @Option(help: "How long to wait for another runner's lock.")
    var lockWait = "60s"

    @Flag(help: "Record a failed or running migration as applied, because you finished it by hand.")
    var applied = false

    @Argument(help: "The version to repair.")
    var version: Int64

    func run() throws {
        var options = MigratorOptions()
        options.lockWait = try PostgresDuration.seconds(lockWait)
        try global.migrator(options).repair(version: version, markApplied: applied)
    }
}
