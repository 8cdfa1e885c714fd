import Foundation
import Testing

@testable import Freshet
import FreshetTestSupport

/// `status` takes checksums of unchanged files from the cache, and reads every file that changed.
@Suite(.serialized) struct ChecksumCacheTests {
    func checksums(_ directory: MigrationDirectory) -> [String] {
        directory.migrations.flatMap { [$0.up.checksum.description, $0.down?.checksum.description ?? "none"] }
    }

    @Test func unchangedFilesComeFromTheCacheAndEditedOnesAreReadAgain() throws {
        let cacheHome = NSTemporaryDirectory() + "freshet-cache-" + UUID().uuidString
        setenv("XDG_CACHE_HOME", cacheHome, 1)
        defer {
            unsetenv("XDG_CACHE_HOME")
            try? FileManager.default.removeItem(atPath: cacheHome)
        }
        let fixture = try MigrationFixture()
        try fixture.add("1_a", "CREATE TABLE a (id int);", down: "DROP TABLE a;")
        try fixture.write("2_b.sql", "-- migrate:up\nCREATE TABLE b (id int);\n-- migrate:down\nDROP TABLE b;\n")
        // Entries for files changed within the last second are not trusted; let these age.
        usleep(1_100_000)
        let full = try fixture.directory()
        let first = try MigrationDirectory(path: fixture.path, checksumsOnly: true)
        #expect(checksums(first) == checksums(full))
        let cache = try #require(ChecksumCache(directory: fixture.path))
        #expect(cache.entries.count == 3, "the first listing wrote an entry per file")

        // The second listing must come from the cache: poison one entry's checksum and see it returned.
        var text = try String(contentsOfFile: cache.file, encoding: .utf8)
        let real = try #require(full.migration(version: 1)?.up.checksum.hex)
        text = text.replacingOccurrences(of: real, with: String(repeating: "0", count: 64))
        try text.write(toFile: cache.file, atomically: true, encoding: .utf8)
        let cached = try MigrationDirectory(path: fixture.path, checksumsOnly: true)
        #expect(cached.migration(version: 1)?.up.checksum.hex == String(repeating: "0", count: 64))
        #expect(!cached.hasText)

        // An edit of the same size moves the change time, so the file is read again.
        try fixture.write("1_a.up.sql", "CREATE TABLE z (id int);")
        let edited = try MigrationDirectory(path: fixture.path, checksumsOnly: true)
        #expect(checksums(edited) == checksums(try fixture.directory()))
        #expect(edited.migration(version: 1)?.up.checksum != full.migration(version: 1)?.up.checksum)
    }
}
