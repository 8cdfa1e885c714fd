import ArgumentParser
import Freshet

struct New: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "new",
        abstract: "Create the up and down files of a new migration and update migrate.sum.")

    @OptionGroup var global: GlobalOptions

    @Flag(help: "Number the migration with a UTC timestamp instead of the next integer.")
    var timestamp = false

    @Argument(help: "What the migration does, e.g. create_users.")
    var name: String

    func run() throws {
        for path in try MigrationScaffolder.create(name: name, in: global.migrationsPath, timestamp: timestamp) {
            global.reporter.info("created \(path)")
        }
    }
}
