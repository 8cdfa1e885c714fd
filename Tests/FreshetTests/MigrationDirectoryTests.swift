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
}
