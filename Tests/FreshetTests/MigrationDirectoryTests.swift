import Foundation
import Testing

@testable import Freshet
import FreshetTestSupport

@Suite struct MigrationDirectoryTests {
    @Test func sortsVersionsNumerically() throws {
        let fixture = try MigrationFixture(["10_ten": "SELECT 10;", "9_nine": "SELECT 9;", "20260101000000_stamp": "SELECT 1;"])
        try fixture.write("README.md", "not a migration")
        try fixture.write("migrate.sum", "sha256:0")
        #expect(try fixture.directory().migrations.map(\.version) == [9, 10, 20_260_101_000_000])
    }

    @Test func refusesDuplicateVersions() throws {
        let fixture = try MigrationFixture(["0001_a": "SELECT 1;", "1_b": "SELECT 1;"])
        #expect {
            try fixture.directory()
        } throws: { error in
            "\(error)".contains("version 1 is used by more than one migration")
        }
    }

    @Test func refusesADownFileWithoutAnUpFile() throws {
        let fixture = try MigrationFixture()
        try fixture.write("0002_b.down.sql", "SELECT 1;")
        #expect(throws: MigrateError.self) { try fixture.directory() }
    }

    @Test func refusesMalformedSQLFileNames() throws {
        let fixture = try MigrationFixture(["0001_a": "SELECT 1;"])
        try fixture.write("seed.sql", "SELECT 1;")
        #expect {
            try fixture.directory()
        } throws: { error in
            "\(error)".contains("seed.sql: malformed migration file name")
        }
    }

    @Test func allowsAnUpFileWithoutADownFile() throws {
        let fixture = try MigrationFixture()
        try fixture.add("0001_a", "SELECT 1;", down: nil)
        #expect(try fixture.directory().migrations.first?.down == nil)
    }

    @Test func moduleFoldersShareOneNumberingAndFlatFilesWinOverFolders() throws {
        let fixture = try MigrationFixture()
        try fixture.add("base/0001_a", "SELECT 1;")
        try fixture.add("users/0002_b", "SELECT 2;")
        try fixture.add("users/0001_c", "SELECT 3;")
        #expect {
            try fixture.directory()
        } throws: { "\($0)".contains("version 1 is used by more than one migration: base/0001_a.up.sql, users/0001_c.up.sql") }
        try fixture.remove("users/0001_c")
        #expect(try fixture.directory().modules == ["base", "users"])
        try fixture.write("Bad-Name/0003_d.up.sql", "SELECT 4;")
        #expect { try fixture.directory() } throws: { "\($0)".contains("Bad-Name/: malformed migration file name") }
        try FileManager.default.removeItem(atPath: fixture.path + "/Bad-Name")
        // A .sql file directly in the directory makes it flat, as golang-migrate reads it: folders are not modules.
        try fixture.add("0003_flat", "SELECT 5;")
        #expect(try fixture.directory().modules.isEmpty)
        #expect(try fixture.directory().migrations.map(\.version) == [3])
    }

    @Test func newMigrationsGoIntoTheirModulesFolder() throws {
        let fixture = try MigrationFixture()
        try fixture.add("base/0001_a", "SELECT 1;")
        try fixture.add("users/0002_b", "SELECT 2;")
        #expect(throws: MigrateError.self) { try MigrationScaffolder.create(name: "c", in: fixture.path) }
        let paths = try MigrationScaffolder.create(name: "add audit", in: fixture.path, module: "audit")
        #expect(paths.map { ($0 as NSString).lastPathComponent } == ["0003_add_audit.up.sql", "0003_add_audit.down.sql"])
        #expect(try fixture.directory().modules == ["base", "users", "audit"])
        #expect(try String(contentsOfFile: fixture.path + "/migrate.sum", encoding: .utf8).contains("audit/0003_add_audit.up.sql "))
    }
}
