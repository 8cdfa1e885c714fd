import ArgumentParser
import Freshet

struct Up: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "up", abstract: "Apply pending migrations.")

    @OptionGroup var global: GlobalOptions
    @OptionGroup var runOptions: RunOptions

    @Option(help: "Apply only up to and including this version.")
    var to: Int64?

    func run() throws {
        try global.migrator(runOptions.migratorOptions()).up(to: to)
    }
}
