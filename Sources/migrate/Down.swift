import ArgumentParser
import Freshet

struct Down: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "down",
        abstract: "Roll back migrations, one step unless told otherwise.")

    @OptionGroup var global: GlobalOptions
    @OptionGroup var runOptions: RunOptions

    @Option(parsing: .unconditional, help: "Roll back every migration above this version.")
    var to: Int64?

    @Flag(help: "Roll back every applied migration, version 0 included.")
    var all = false

    @Option(parsing: .unconditional, help: "Roll back this many migrations.")
    var steps: Int?

    @Flag(help: "Run down files that changed since their migration was applied; the force is recorded.")
    var force = false

    @Flag(help: "Roll back through a migration without a down file as an empty step; recorded as forced.")
    var allowMissingDown = false

    func validate() throws {
        if [to != nil, steps != nil, all].filter({ $0 }).count > 1 {
            throw ValidationError("Pass one of --to, --steps and --all.")
        }
        if let steps, steps < 1 { throw ValidationError("--steps must be at least 1.") }
        if let to, to < 0 { throw ValidationError("--to must be 0 or a version.") }
    }

    func run() throws {
        var options = try runOptions.migratorOptions()
        options.force = force
        options.allowMissingDown = allowMissingDown
        let target: MigrationPlanner.DownTarget = all ? .all : to.map { .version($0) } ?? .steps(steps ?? 1)
        try global.migrator(options).down(target)
    }
}
