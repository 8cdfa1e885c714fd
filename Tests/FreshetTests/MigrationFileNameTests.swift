import Testing

@testable import Freshet

@Suite struct MigrationFileNameTests {
    @Test func parsesGolangMigrateNames() throws {
        let up = try MigrationFileName.parse("0001_create_users.up.sql").get()
        #expect(up == MigrationFileName(version: 1, name: "create_users", direction: .up))
        let down = try MigrationFileName.parse("20260101120000_add-index.v2.down.sql").get()
        #expect(down == MigrationFileName(version: 20_260_101_120_000, name: "add-index.v2", direction: .down))
    }

    @Test func versionZeroAndDbmateNamesAreMigrationNames() throws {
        #expect(try MigrationFileName.parse("0_init.up.sql").get() == MigrationFileName(version: 0, name: "init", direction: .up))
        #expect(
            try MigrationFileName.parse("20151129054053_create_users.sql").get()
                == MigrationFileName(version: 20_151_129_054_053, name: "create_users", direction: nil))
        #expect(try MigrationFileName.parse("0002_usérs.up.sql").get().name == "usérs")
    }

    @Test(arguments: [
        ("create_users.up.sql", "version number"),
        ("0001.up.sql", "followed by _"),
        ("0001_.up.sql", "followed by _"),
        ("99999999999999999999_big.up.sql", "below 2^63"),
        ("0001_users.txt", ".up.sql or .down.sql"),
        ("0001_us ers.up.sql", "spaces"),
        ("0001_us\ters.up.sql", "spaces"),
    ])
    func refusesMalformedNames(name: String, reason: String) {
        guard case .failure(.malformedFileName(let file, let why)) = MigrationFileName.parse(name) else {
            Issue.record("\(name) should be refused")
            return
        }
        #expect(file == name)
        #expect(why.contains(reason))
    }
}
