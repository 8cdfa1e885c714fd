import ArgumentParser
import Foundation
import Freshet

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show applied, pending, changed, missing and failed migrations.")

    @OptionGroup var global: GlobalOptions

    @Flag(help: "Print JSON.")
    var json = false

    @Flag(help: "Exit 3 when anything is pending, changed, missing, running or failed.")
    var exitCode = false

    func run() throws {
        let (entries, target, directory) = try MigrationStatus.read(
            directoryPath: global.migrationsPath, conninfo: ConnectionTarget.conninfo(url: global.url))
        print(json ? try StatusReport.json(entries, target: target) : StatusReport.table(entries))
        let status = exitCode && entries.contains(where: \.needsAttention) ? ExitStatus.verificationFailure : .success
        // Exit with everything still allocated: freeing thousands of scripts, statuses and cache
        // entries one by one costs more than printing them. _exit also skips libpq's and
        // OpenSSL's exit handlers, which only free memory, once the output is flushed.
        withExtendedLifetime((entries, directory)) { fflush(nil); _exit(status.rawValue) }
    }
}
