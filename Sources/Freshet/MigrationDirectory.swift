import Foundation

/// The migrations found in one directory, validated and sorted by version.
public struct MigrationDirectory: Sendable {
    public let path: String
    public let migrations: [Migration]
    private let byVersion: [Int64: Migration]

    /// The sum file that records the directory's chained hash.
    public var sumFilePath: String { (path as NSString).appendingPathComponent(SumFile.fileName) }

    /// Reads every `*.sql` file in `path`, refusing malformed names, duplicate versions and orphan down files.
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
                let script = MigrationScript(
                    version: parsed.version, name: parsed.name, direction: parsed.direction,
                    path: filePath, sql: Checksum.normalize(bytes))
                switch parsed.direction {
                case .up:
                    if let other = ups[parsed.version] {
                        problems.append(.duplicateVersion(parsed.version, files: [other.fileName, fileName]))
                    }
                    ups[parsed.version] = script
                case .down:
                    if let other = downs[parsed.version] {
                        problems.append(.duplicateVersion(parsed.version, files: [other.fileName, fileName]))
                    }
                    downs[parsed.version] = script
                }
            }
        }
        for (version, down) in downs.sorted(by: { $0.key < $1.key }) {
            if let up = ups[version] {
                if up.name != down.name {
                    problems.append(.duplicateVersion(version, files: [up.fileName, down.fileName]))
                }
            } else {
                problems.append(.orphanDownFile(down.fileName))
            }
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

    /// The migration with this version, if a file exists for it.
    public func migration(version: Int64) -> Migration? {
        byVersion[version]
    }
}
