import Testing

@testable import Freshet

@Suite struct SourceLocationTests {
    let text = "SELECT 1;\nSELECT 'é', bad;\n"

    @Test func countsCharactersAsTheServerDoes() {
        // Position 23 is `bad`: the server counts characters, not bytes.
        let location = SourceLocation(characterPosition: 23, in: text)
        #expect(location == SourceLocation(line: 2, column: 13))
        #expect(location.lineText(in: text) == "SELECT 'é', bad;")
    }

    @Test func mapsUTF8Offsets() {
        #expect(SourceLocation(utf8Offset: 10, in: text) == SourceLocation(line: 2, column: 1))
    }

    @Test func mapsPositionsInsideAStatement() {
        let script = MigrationScript(version: 1, name: "x", direction: .up, path: "/x", sql: "SELECT 1;\n  SELECT\n bad;")
        let statement = SQLStatementSplitter.split(script.sql)[1]
        #expect(Migrator.location(of: 3, in: statement, text: script.sql) == SourceLocation(line: 2, column: 5))
        #expect(Migrator.location(of: 9, in: statement, text: script.sql) == SourceLocation(line: 3, column: 2))
    }
}
