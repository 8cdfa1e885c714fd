import Foundation
import Testing

@testable import Freshet
import FreshetTestSupport

@Suite struct SumFileTests {
    @Test func aMatchingSumVerifies() throws {
        let fixture = try MigrationFixture(["0001_a": "SELECT 1;", "0002_b": "SELECT 2;"])
        try SumFile.write(for: fixture.directory())
        try SumFile.verify(directory: fixture.directory())
        let parsed = try SumFile(text: String(contentsOfFile: fixture.directory().sumFilePath, encoding: .utf8))
        #expect(parsed == SumFile(directory: try fixture.directory()))
        #expect(parsed.entries.map(\.fileName) == [
            "0001_a.up.sql", "0001_a.down.sql", "0002_b.up.sql", "0002_b.down.sql",
        ])
    }

    @Test func lineEndingChangesStillVerify() throws {
        let fixture = try MigrationFixture(["0001_a": "SELECT 1;\nSELECT 2;\n"])
        try SumFile.write(for: fixture.directory())
        try fixture.write("0001_a.up.sql", "\u{FEFF}SELECT 1;\r\nSELECT 2;\r\n")
        try SumFile.verify(directory: fixture.directory())
    }

    @Test func anEditedFileFails() throws {
        let fixture = try MigrationFixture(["0001_a": "SELECT 1;", "0002_b": "SELECT 2;"])
        try SumFile.write(for: fixture.directory())
        try fixture.write("0001_a.up.sql", "SELECT 11;")
        let problems = try verificationProblems(fixture)
        #expect(problems.first == "0001_a.up.sql was edited after migrate.sum was written")
    }

    @Test func anInsertedFileFails() throws {
        let fixture = try MigrationFixture(["0001_a": "SELECT 1;", "0003_c": "SELECT 3;"])
        try SumFile.write(for: fixture.directory())
        try fixture.add("0002_b", "SELECT 2;")
        let problems = try verificationProblems(fixture)
        #expect(problems.contains { $0.hasPrefix("0002_b.up.sql is not in migrate.sum") })
    }

    @Test func aRemovedFileFails() throws {
        let fixture = try MigrationFixture(["0001_a": "SELECT 1;", "0002_b": "SELECT 2;"])
        try SumFile.write(for: fixture.directory())
        try fixture.remove("0002_b")
        let problems = try verificationProblems(fixture)
        #expect(problems.contains { $0.hasPrefix("0002_b.up.sql is in migrate.sum but missing") })
    }

    @Test func reorderedContentsFail() throws {
        let fixture = try MigrationFixture(["0001_a": "SELECT 1;", "0002_b": "SELECT 2;"])
        try SumFile.write(for: fixture.directory())
        try fixture.write("0001_a.up.sql", "SELECT 2;")
        try fixture.write("0002_b.up.sql", "SELECT 1;")
        #expect(try !verificationProblems(fixture).isEmpty)
    }

    @Test func aMissingSumFileFails() throws {
        let fixture = try MigrationFixture(["0001_a": "SELECT 1;"])
        let problems = try verificationProblems(fixture)
        #expect(problems.first?.contains("run `migrate sum`") == true)
    }

    @Test func aTamperedTotalFails() throws {
        let fixture = try MigrationFixture(["0001_a": "SELECT 1;"])
        let sum = try SumFile.write(for: fixture.directory())
        var tampered = sum
        tampered.total = "sha256:" + String(repeating: "0", count: 64)
        try tampered.text.write(toFile: fixture.directory().sumFilePath, atomically: true, encoding: .utf8)
        #expect(try verificationProblems(fixture).first?.contains("total") == true)
    }

    private func verificationProblems(_ fixture: MigrationFixture) throws -> [String] {
        do {
            try SumFile.verify(directory: fixture.directory())
            return []
        } catch MigrateError.verificationFailed(let problems) {
            return problems
        }
    }
}
