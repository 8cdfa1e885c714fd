import ArgumentParser
import Freshet

struct New: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "new",
        abstract: "Create the up and down files of a new migration and update migrate.sum.")

    @OptionGroup var global: GlobalOptions

    @Option(help: "The module whose folder gets the files, in a bundle of modules (a new name starts a module).")
    var module: String?

    @Flag(help: "Number the migration with a UTC timestamp instead of the next integer.")
    var timestamp = false

    @Argument(help: "What the migration does, e.g. create_users.")
    var name: String

    func run() throws {
        for path in try MigrationScaffolder.create(name: name, in: global.migrationsPath, module: module, timestamp: timestamp) {
            global.reporter.info("created \(path)")
        }
    }
}
