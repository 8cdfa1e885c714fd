import ArgumentParser
import Freshet

struct Down: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "down",
        abstract: "Roll back migrations, one step unless told otherwise.",
        discussion: """
            With --module, only that module's migrations are counted and rolled back, together with \
            the migrations of other modules that require them, which are listed first. A down step \
            that drops a table or a column holding rows is rolled back and refused, unless the file \
            declares what it drops derived or --allow-data-loss is given.
            """)

    @OptionGroup var global: GlobalOptions
    @OptionGroup var runOptions: RunOptions

    @Option(help: "Roll back only this module's migrations, and those of other modules that require them.")
    var module: String?

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

    @Flag(help: "Let a down step drop tables or columns that hold rows; recorded as an event.")
    var allowDataLoss = false

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
        options.allowDataLoss = allowDataLoss
        let target: MigrationPlanner.DownTarget = all ? .all : to.map { .version($0) } ?? .steps(steps ?? 1)
        try global.migrator(options).down(target, module: module)
    }
}
