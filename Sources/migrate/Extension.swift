import ArgumentParser
import Freshet

struct Extension: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "extension",
        abstract: "Write the PGXS extension files (freshet and one freshet_<module> per module) generated from the migrations.",
        discussion: "`make install-extension` runs this, then installs the files with PGXS.")

    @OptionGroup var global: GlobalOptions

    @Option(help: "The directory to write the control files and scripts into.")
    var out = "extension"

    func run() throws {
        let bundle = try ExtensionBundle(directory: global.loadDirectory())
        try bundle.write(to: out)
        global.reporter.info("wrote \(bundle.files.count) extension files to \(out)")
    }
}
