import ArgumentParser
import Foundation
import Freshet

/// Options every database command shares: where the migrations are, where the database is, how loud.
struct GlobalOptions: ParsableArguments {
    @Option(help: "Migrations directory (default: $MIGRATIONS_DIR, then migrations/).")
    var dir: String?

    @Option(help: "Connection URL or libpq string (default: $DATABASE_URL, then libpq's PG* variables).")
    var url: String?

    @Flag(name: .shortAndLong, help: "Print only errors and results.")
    var quiet = false

    @Flag(name: .shortAndLong, help: "Print lock, plan and replay details.")
    var verbose = false

    var migrationsPath: String {
        dir ?? ProcessInfo.processInfo.environment["MIGRATIONS_DIR"] ?? "migrations"
    }

    var reporter: Reporter {
        Reporter(verbosity: quiet ? .quiet : verbose ? .verbose : .normal)
    }

    func loadDirectory() throws -> MigrationDirectory {
        try MigrationDirectory(path: migrationsPath)
    }

    func connect() throws -> PGConnection {
        try PGConnection(conninfo: ConnectionTarget.conninfo(url: url))
    }
}

/// Options of the commands that change the database.
struct RunOptions: ParsableArguments {
    @Option(help: "How long to wait for another runner's lock, e.g. 500ms, 30s, 2min.")
    var lockWait = "60s"

    @Option(help: "lock_timeout for each migration; a timeout is retried with backoff.")
    var lockTimeout = "5s"

    @Flag(help: "Apply pending files older than the newest applied migration.")
    var allowOutOfOrder = false

    @Flag(help: "Print the plan without changing anything.")
    var dryRun = false

    @Flag(help: "Run every planned migration in one transaction: all or nothing.")
    var singleTransaction = false

    func migratorOptions() throws -> MigratorOptions {
        var options = MigratorOptions()
        options.lockWait = try PostgresDuration.seconds(lockWait)
        options.lockTimeout = try PostgresDuration.seconds(lockTimeout)
        options.allowOutOfOrder = allowOutOfOrder
        options.dryRun = dryRun
        options.singleTransaction = singleTransaction
        return options
    }
}

extension GlobalOptions {
    /// Connects, announces the target, and builds a migrator for a command that changes the database.
    func migrator(_ options: MigratorOptions) throws -> Migrator {
        let directory = try loadDirectory()
        let connection = try connect()
        let reporter = self.reporter
        reporter.info("target: \(connection.target)")
        return Migrator(connection: connection, directory: directory, reporter: reporter, options: options)
    }
}
