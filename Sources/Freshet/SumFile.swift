import Foundation

/// `migrate.sum`: a chained SHA-256 over every migration file's name and checksum.
///
/// Each line's hash covers its file and every line before it, so editing, inserting, removing
/// or renumbering a migration changes the sum from that point on; the first line, the total,
/// makes two branches that each add a migration conflict in version control.
public struct SumFile: Equatable, Sendable {
    public static let fileName = "migrate.sum"

    public struct Entry: Equatable, Sendable {
        public var fileName: String
        public var chainedHash: String
    }

    public var total: String
    public var entries: [Entry]

    /// Computes the sum of a directory's migrations, in version order, up before down.
    public init(directory: MigrationDirectory) {
        let scripts = directory.migrations.flatMap { [$0.up] + ($0.down.map { [$0] } ?? []) }
        var previous = ""
        var entries: [Entry] = []
        entries.reserveCapacity(scripts.count)
        for script in scripts {
            previous = Checksum.hexDigest(Data("\(previous)\n\(script.sumName)\n\(script.checksum.hex)".utf8))
            entries.append(Entry(fileName: script.sumName, chainedHash: "\(Checksum.algorithm):\(previous)"))
        }
        self.entries = entries
        total = "\(Checksum.algorithm):\(previous.isEmpty ? Checksum.hexDigest(Data()) : previous)"
    }

    /// Parses the text of a sum file.
    public init(text: String) throws {
        // Split on bytes: Character-based splitting costs more than hashing for large directories.
        var lines = text.utf8.split(separator: UInt8(ascii: "\n")).map { line in
            String(decoding: line.filter { $0 != UInt8(ascii: "\r") }, as: UTF8.self)
        }
        guard let header = lines.first, header.hasPrefix("\(Checksum.algorithm):") else {
            throw MigrateError.malformedSumFile("the first line must be the total, sha256:<hex>")
        }
        lines.removeFirst()
        total = header
        entries = try lines.map { line in
            let parts = line.utf8.split(separator: UInt8(ascii: " "))
            guard parts.count == 2 else {
                throw MigrateError.malformedSumFile("expected `<file> sha256:<hex>`, found `\(line)`")
            }
            return Entry(fileName: String(decoding: parts[0], as: UTF8.self), chainedHash: String(decoding: parts[1], as: UTF8.self))
        }
    }

    public var text: String {
        ([total] + entries.map { "\($0.fileName) \($0.chainedHash)" }).joined(separator: "\n") + "\n"
    }

    /// Writes the directory's sum file.
    @discardableResult
    public static func write(for directory: MigrationDirectory) throws -> SumFile {
        let sum = SumFile(directory: directory)
        try sum.text.write(toFile: directory.sumFilePath, atomically: true, encoding: .utf8)
        return sum
    }

    /// Checks a directory against its sum file with no database, and names what differs.
    public static func verify(directory: MigrationDirectory) throws {
        guard let data = FileManager.default.contents(atPath: directory.sumFilePath) else {
            throw MigrateError.verificationFailed([
                "\(directory.sumFilePath) is missing: run `migrate sum` and commit it"
            ])
        }
        let recorded = try SumFile(text: String(decoding: data, as: UTF8.self))
        let actual = SumFile(directory: directory)
        guard recorded != actual else { return }
        throw MigrateError.verificationFailed(recorded.differences(from: actual))
    }

    /// Explains how `actual` departs from this recorded sum.
    func differences(from actual: SumFile) -> [String] {
        let recordedNames = Set(entries.map(\.fileName))
        let actualNames = Set(actual.entries.map(\.fileName))
        var problems: [String] = []
        for name in actual.entries.map(\.fileName) where !recordedNames.contains(name) {
            problems.append("\(name) is not in \(Self.fileName): a migration was added without `migrate sum`")
        }
        for name in entries.map(\.fileName) where !actualNames.contains(name) {
            problems.append("\(name) is in \(Self.fileName) but missing from the directory: a migration was removed")
        }
        if problems.isEmpty {
            if let index = zip(entries, actual.entries).enumerated().first(where: { $0.element.0 != $0.element.1 })?.offset {
                let recordedName = entries[index].fileName
                let actualName = actual.entries[index].fileName
                if recordedName == actualName {
                    problems.append("\(actualName) was edited after \(Self.fileName) was written")
                } else {
                    problems.append("migrations were reordered: \(actualName) now stands where \(recordedName) stood")
                }
            } else {
                problems.append("the total on the first line of \(Self.fileName) does not match its entries")
            }
        }
        problems.append("If the change is intended, run `migrate sum` and commit \(Self.fileName).")
        return problems
    }
}
