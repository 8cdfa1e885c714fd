import ArgumentParser
import Freshet

struct Up: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "up", abstract: "Apply pending migrations.")

    @OptionGroup var global: GlobalOptions
    @OptionGroup var runOptions: RunOptions

    @Option(help: "Apply only this module's migrations, and the migrations of other modules they require.")
    var module: String?

    @Option(help: "Apply only up to and including this version (of --module's migrations, when given).")
    var to: Int64?

    func run() throws {
        try global.migrator(runOptions.migratorOptions()).up(to: to, module: module)
    }
}
