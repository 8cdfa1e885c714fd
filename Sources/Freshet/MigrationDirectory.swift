import Foundation

/// The migrations found in one directory, validated and sorted by version.
public struct MigrationDirectory: Sendable {
    public let path: String
    public let migrations: [Migration]
    private let byVersion: [Int64: Migration]

    /// The sum file that records the directory's chained hash.
    public var sumFilePath: String { (path as NSString).appendingPathComponent(SumFile.fileName) }

    /// Reads every `*.sql` file in `path` (golang-migrate pairs and dbmate files), refusing malformed names,
    /// duplicate versions and orphan down files, all at once.
    public init(path: String) throws {
        self.path = path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw MigrateError.missingDirectory(path)
        }
        let names = try FileManager.default.contentsOfDirectory(atPath: path).filter { $0.hasSuffix(".sql") }
        var ups: [Int64: MigrationScript] = [:]
        var downs: [Int64: MigrationScript] = [:]
        var problems: [MigrateError] = []
        for fileName in names.sorted() {
            switch MigrationFileName.parse(fileName) {
            case .failure(let error):
                problems.append(error)
            case .success(let parsed):
                let filePath = path.hasSuffix("/") ? path + fileName : path + "/" + fileName
                guard let bytes = FileManager.default.contents(atPath: filePath) else {
                    throw MigrateError.unreadableFile(filePath)
                }
                let text = Checksum.normalize(bytes)
                func add(_ script: MigrationScript, to scripts: inout [Int64: MigrationScript]) {
                    if let other = scripts[script.version] {
                        problems.append(.duplicateVersion(script.version, files: [other.fileName, fileName]))
                    }
                    scripts[script.version] = script
                }
                guard let direction = parsed.direction else {
                    guard DbmateFile.containsMarker(text) else {
                        problems.append(.malformedFileName(
                            file: fileName,
                            reason: "it must end in .up.sql or .down.sql, or hold dbmate's `-- migrate:up` section"))
                        continue
                    }
                    do {
                        let sections = try DbmateFile.sections(of: text, file: fileName)
                        add(Self.section(sections.up, .up, parsed, filePath), to: &ups)
                        if let down = sections.down { add(Self.section(down, .down, parsed, filePath), to: &downs) }
                    } catch let error as MigrateError {
                        problems.append(error)
                    }
                    continue
                }
                let script = MigrationScript(
                    version: parsed.version, name: parsed.name, direction: direction, path: filePath, sql: text)
                if direction == .up { add(script, to: &ups) } else { add(script, to: &downs) }
            }
        }
        // As in golang-migrate, up and down pair by version alone: their names may differ.
        for (version, down) in downs.sorted(by: { $0.key < $1.key }) where ups[version] == nil {
            problems.append(.orphanDownFile(down.fileName))
        }
        if problems.count == 1 { throw problems[0] }
        if !problems.isEmpty { throw MigrateError.several(problems) }
        let migrations = ups.keys.sorted().map { version in
            let up = ups[version]!
            return Migration(version: version, name: up.name, up: up, down: downs[version])
        }
        self.migrations = migrations
        byVersion = Dictionary(uniqueKeysWithValues: migrations.map { ($0.version, $0) })
    }

    private static func section(
        _ section: DbmateFile.Section, _ direction: MigrationScript.Direction, _ parsed: MigrationFileName, _ path: String
    ) -> MigrationScript {
        MigrationScript(
            version: parsed.version, name: parsed.name, direction: direction, path: path, sql: section.sql,
            firstLine: section.firstLine, dbmateNoTransaction: section.noTransaction)
    }

    /// The migration with this version, if a file exists for it.
    public func migration(version: Int64) -> Migration? {
        byVersion[version]
    }
}
