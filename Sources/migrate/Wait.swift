import ArgumentParser
import Freshet

struct Wait: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "wait", abstract: "Wait until the database accepts connections.")

    @OptionGroup var global: GlobalOptions

    @Option(help: "Give up after this long, e.g. 30s or 2min.")
    var timeout = "60s"

    func run() throws {
        try ServerWait.wait(conninfo: ConnectionTarget.conninfo(url: global.url), timeout: PostgresDuration.seconds(timeout))
        global.reporter.info("the database accepts connections")
    }
}
