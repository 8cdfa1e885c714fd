import ArgumentParser
import Freshet

struct Sum: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "sum", abstract: "Write migrate.sum for the migrations directory.")

    @OptionGroup var global: GlobalOptions

    func run() throws {
        let directory = try global.loadDirectory()
        let sum = try SumFile.write(for: directory)
        global.reporter.info("wrote \(directory.sumFilePath): \(sum.entries.count) files, \(sum.total)")
    }
}
