import Testing

@testable import Freshet
import FreshetTestSupport

@Suite struct ExtensionBundleTests {
    func modules() throws -> MigrationFixture {
        let fixture = try MigrationFixture()
        try fixture.add("base/1_schema", "CREATE SCHEMA app;", down: "DROP SCHEMA app;")
        try fixture.add("base/3_more", "CREATE TABLE app.t (id int);", down: "DROP TABLE app.t;")
        try fixture.add("users/2_o'brien%s", "CREATE TABLE app.users (id int);", down: "DROP TABLE app.users;")
        try fixture.write("users/requires", "2: base 1\n")
        return fixture
    }

    @Test func eachModuleIsAnExtensionWhoseVersionsAreItsChain() throws {
        let bundle = try ExtensionBundle(directory: modules().directory())
        #expect(bundle.files.map(\.name).sorted() == [
            "freshet--1.sql", "freshet.control", "freshet_base--1--3.sql", "freshet_base--1.sql", "freshet_base--3--1.sql",
            "freshet_base.control", "freshet_users--2.sql", "freshet_users.control",
        ])
        let users = bundle.files.first { $0.name == "freshet_users.control" }!.text
        #expect(users.contains("default_version = '2'") && users.contains("requires = 'freshet_base'"))
        let umbrella = bundle.files.first { $0.name == "freshet.control" }!.text
        #expect(umbrella.contains("requires = 'freshet_base, freshet_users'"))
        let install = bundle.files.first { $0.name == "freshet_users--2.sql" }!.text
        #expect(install.hasPrefix("\\echo Use \"CREATE EXTENSION freshet_users\" to load this file. \\quit\n"))
        #expect(install.contains("'o''brien%s'::text"), "a quote in a name is doubled inside the literal")
        #expect(install.contains("users/2_o''brien%%s"), "and a % in the message is not a placeholder")
    }

    @Test func whatAnExtensionScriptCannotRunIsRefused() throws {
        #expect { try ExtensionBundle(directory: MigrationFixture(["1_a": "SELECT 1;"]).directory()) } throws: {
            "\($0)".contains("is a flat directory")
        }
        let fixture = try modules()
        try fixture.add("base/4_own", "BEGIN;\nSELECT 1;\nCOMMIT;\n")
        try fixture.add("base/5_nested", "CREATE EXTENSION hstore;")
        #expect { try ExtensionBundle(directory: fixture.directory()) } throws: { error in
            "\(error)".contains("base/4_own.up.sql manages its own transactions")
                && "\(error)".contains("base/5_nested.up.sql:1: an extension script cannot create another extension")
        }
    }

    @Test func aTemporaryTableLeavesTheExtensionAtOnce() throws {
        let fixture = try modules()
        try fixture.add("base/4_scratch", "CREATE TEMPORARY TABLE scratch ON COMMIT DROP AS SELECT 1 AS n;\nSELECT * FROM scratch;\n")
        let update = try ExtensionBundle(directory: fixture.directory()).files.first { $0.name == "freshet_base--3--4.sql" }!.text
        #expect(update.contains("SELECT 1 AS n; ALTER EXTENSION freshet_base DROP TABLE pg_temp.scratch;\nSELECT * FROM scratch;"))
    }
}
