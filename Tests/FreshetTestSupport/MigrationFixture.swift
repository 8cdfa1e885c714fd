import Foundation

import Freshet

/// A temporary migrations directory, removed when the fixture is released.
public final class MigrationFixture {
    public let path: String

    /// Writes `<stem>.up.sql` with the given SQL and a down file for each stem.
    public init(_ migrations: [String: String] = [:]) throws {
        path = NSTemporaryDirectory() + "freshet-fixture-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        for (stem, sql) in migrations { try add(stem, sql) }
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    public func add(_ stem: String, _ up: String, down: String? = "SELECT 'down';") throws {
        try write("\(stem).up.sql", up)
        if let down { try write("\(stem).down.sql", down) }
    }

    /// Writes a file; a name with a folder, as `ledger/1_a.up.sql`, puts it in that module's folder.
    public func write(_ name: String, _ contents: String) throws {
        let folder = (name as NSString).deletingLastPathComponent
        if !folder.isEmpty {
            try FileManager.default.createDirectory(atPath: "\(path)/\(folder)", withIntermediateDirectories: true)
        }
        try contents.write(toFile: "\(path)/\(name)", atomically: true, encoding: .utf8)
    }

    public func remove(_ stem: String) throws {
        for suffix in [".up.sql", ".down.sql"] where FileManager.default.fileExists(atPath: "\(path)/\(stem)\(suffix)") {
            try FileManager.default.removeItem(atPath: "\(path)/\(stem)\(suffix)")
        }
    }

    public func directory() throws -> MigrationDirectory {
        try MigrationDirectory(path: path)
    }
}
