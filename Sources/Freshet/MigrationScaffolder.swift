import Foundation

/// Writes the up and down files of a new migration and refreshes the sum file.
public enum MigrationScaffolder {
    /// Creates `<version>_<name>.up.sql` and `.down.sql` in `path`, creating the directory if needed.
    ///
    /// The version continues the directory's numbering: one more than the newest, padded to at least
    /// four digits, or a UTC timestamp (`yyyyMMddHHmmss`) when the directory already uses timestamps
    /// or `timestamp` is set.
    /// In a bundle of modules the files go into `module`'s folder, which a new module's name creates;
    /// its version still continues the whole bundle's numbering, since versions are unique across it.
    public static func create(name: String, in path: String, module: String? = nil, timestamp: Bool = false, now: Date = Date())
        throws -> [String]
    {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        let existing = try MigrationDirectory(path: path)
        var folder = path
        if let module {
            guard ModuleRequirement.isValidModuleName(module) else {
                throw MigrateError.malformedFileName(file: module + "/", reason: "a module's name must be lowercase letters, digits and _, starting with a letter")
            }
            guard existing.modules.isEmpty == false || existing.migrations.isEmpty else {
                throw MigrateError.unknownModule(module, known: [])
            }
            folder = (path as NSString).appendingPathComponent(module)
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        } else if !existing.modules.isEmpty {
            throw MigrateError.moduleNeeded(known: existing.modules)
        }
        let newest = existing.migrations.last?.version ?? 0
        let version: String
        if timestamp || newest >= 1_000_000_000 {
            let formatter = DateFormatter()
            formatter.dateFormat = "yyyyMMddHHmmss"
            formatter.timeZone = TimeZone(identifier: "UTC")
            formatter.locale = Locale(identifier: "en_US_POSIX")
            let stamp = Int64(formatter.string(from: now))!
            version = String(max(stamp, newest + 1))
        } else {
            let width = max(4, existing.migrations.last.map { $0.up.fileName.prefix { $0.isNumber }.count } ?? 4)
            let next = String(newest + 1)
            version = String(repeating: "0", count: max(0, width - next.count)) + next
        }
        let slug = name.lowercased().map { $0.isLetter || $0.isNumber ? $0 : "_" }
        let stem = "\(version)_\(String(slug))"
        guard case .success = MigrationFileName.parse("\(stem).up.sql") else {
            throw MigrateError.malformedFileName(file: "\(stem).up.sql", reason: "choose a name of ASCII letters and digits")
        }
        let paths = ["up", "down"].map { (folder as NSString).appendingPathComponent("\(stem).\($0).sql") }
        try "-- \(name): describe the change; the whole file runs in one transaction.\n"
            .write(toFile: paths[0], atomically: true, encoding: .utf8)
        try "-- Undo every change of \(stem).up.sql, in reverse order.\n"
            .write(toFile: paths[1], atomically: true, encoding: .utf8)
        try SumFile.write(for: MigrationDirectory(path: path))
        return paths
    }
}
