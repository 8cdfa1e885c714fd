import ArgumentParser
import Freshet

struct Down: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Roll back migrations, one step unless told otherwise.")

    @OptionGroup var global: GlobalOptions
    @OptionGroup var runOptions: RunOptions

    @Option(parsing: .unconditional, help: "Roll back every migration above this version; 0 rolls back everything.")
    var to: Int64?

    @Option(parsing: .unconditional, help: "Roll back this many migrations.")
    var steps: Int?

    @Flag(help: "Run down files that changed since their migration was applied; the force is recorded.")
    var force = false

    func validate() throws {
        if to != nil && steps != nil { throw ValidationError("Pass either --to or --steps, not both.") }
        if let steps, steps < 1 { throw ValidationError("--steps must be at least 1.") }
        if let to, to < 0 { throw ValidationError("--to must be 0 or a version.") }
    }

    func run() throws {
        var options = try runOptions.migratorOptions()
        options.force = force
        let target: MigrationPlanner.DownTarget = to.map { .version($0) } ?? .steps(steps ?? 1)
        try global.migrator(options).down(target)
    }
}
