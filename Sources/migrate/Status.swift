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
        let (entries, target) = try MigrationStatus.read(
            directoryPath: global.migrationsPath, conninfo: ConnectionTarget.conninfo(url: global.url))
        print(json ? try StatusReport.json(entries, target: target) : StatusReport.table(entries))
        if exitCode && entries.contains(where: \.needsAttention) {
            throw ExitCode(ExitStatus.verificationFailure.rawValue)
        }
    }
}
