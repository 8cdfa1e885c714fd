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
        // As in `migrate status`: the stats are shared with the helper thread, which takes the later files.
        WorkerThread.helper.start()
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
        #expect(cache.count == 3, "the first listing wrote an entry per file")

        // The second listing must come from the cache: poison one entry's checksum and see it returned.
        let real = try #require(full.migration(version: 1)?.up.checksum)
        let digest = [real.words.x, real.words.y, real.words.z, real.words.w].flatMap { word in withUnsafeBytes(of: word) { Array($0) } }
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: cache.file)))
        let at = try #require((0...(bytes.count - 32)).first { bytes[$0..<($0 + 32)].elementsEqual(digest) }, "the cache holds the digest")
        bytes.replaceSubrange(at..<(at + 32), with: [UInt8](repeating: 0, count: 32))
        try Data(bytes).write(to: URL(fileURLWithPath: cache.file))
        let zeros = String(repeating: "0", count: 64)
        let cached = try MigrationDirectory(path: fixture.path, checksumsOnly: true)
        #expect(cached.migration(version: 1)?.up.checksum.hex == zeros)
        #expect(!cached.hasText)

        // A new file moves every later one in the listing: they are still found by name.
        try fixture.add("0_first", "SELECT 1;", down: "SELECT 1;")
        let shifted = try MigrationDirectory(path: fixture.path, checksumsOnly: true)
        #expect(shifted.migration(version: 1)?.up.checksum.hex == zeros, "the shifted entry still came from the cache")
        #expect(shifted.migration(version: 0)?.up.checksum == (try fixture.directory()).migration(version: 0)?.up.checksum)

        // A cache in another format, or cut short, is only slower.
        try Data("freshet-checksums 1 0\n".utf8).write(to: URL(fileURLWithPath: cache.file))
        #expect(checksums(try MigrationDirectory(path: fixture.path, checksumsOnly: true)) == checksums(try fixture.directory()))
        let rewritten = try [UInt8](Data(contentsOf: URL(fileURLWithPath: cache.file)))
        try Data(rewritten.dropLast(40)).write(to: URL(fileURLWithPath: cache.file))
        #expect(checksums(try MigrationDirectory(path: fixture.path, checksumsOnly: true)) == checksums(try fixture.directory()))

        // An edit of the same size moves the change time, so the file is read again.
        try fixture.write("1_a.up.sql", "CREATE TABLE z (id int);")
        let edited = try MigrationDirectory(path: fixture.path, checksumsOnly: true)
        #expect(checksums(edited) == checksums(try fixture.directory()))
        #expect(edited.migration(version: 1)?.up.checksum != full.migration(version: 1)?.up.checksum)
    }
}
