import ArgumentParser
import Foundation
import Freshet

/// The `migrate` command: versioned SQL migrations for PostgreSQL.
@main
struct Migrate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Apply, roll back and verify versioned PostgreSQL migrations.",
        discussion: """
            Exit codes: 0 success, 1 error, 2 usage, 3 verification failure \
            (changed, missing or out-of-order files, a stale migrate.sum, or `status --exit-code` with work to do).
            """,
        version: "migrate (Freshet) 0.13.0",
        subcommands: [
            Up.self, Down.self, Status.self, Verify.self, New.self, Sum.self, Repair.self, Baseline.self, Wait.self, Test.self,
            Cluster.self, Extension.self,
        ]
    )

    /// The commands that connect, by name: they load libpq while their arguments are parsed.
    private static let connectingCommands: Set<String> = ["up", "down", "status", "verify", "repair", "baseline", "wait", "test"]

    static func main() {
        let arguments = CommandLine.arguments.dropFirst()
        if let command = arguments.first, connectingCommands.contains(command), !arguments.contains("--offline") {
            // Before libpq starts loading: a thread started during the load waits for it.
            if command == "status" { WorkerThread.helper.start() }
            WorkerThread.connector.start()
        }
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let error as MigrateError {
            fail(error, status: error.exitCode)
        } catch let error as PostgresError {
            fail(error, status: .error)
        } catch let error as ConnectionError {
            fail(error, status: .error)
        } catch {
            if exitCode(for: error) == .validationFailure {
                FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
                Foundation.exit(ExitStatus.usage.rawValue)
            }
            exit(withError: error)
        }
    }

    private static func fail(_ error: some Error, status: ExitStatus) -> Never {
        FileHandle.standardError.write(Data("error: \(error)\n".utf8))
        Foundation.exit(status.rawValue)
    }
}
