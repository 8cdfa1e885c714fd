import Testing

@testable import Freshet

@Suite struct SQLStatementSplitterTests {
    @Test func splitsOnTopLevelSemicolonsOnly() {
        let script = """
            -- a comment; with a semicolon
            CREATE TABLE t (note text DEFAULT 'a;b', "we;ird" int);
            /* block /* nested; */ still comment; */
            INSERT INTO t VALUES (E'it\\'s; fine', 1);
            CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $body$ BEGIN RETURN 1; END; $body$;
            DO $$ BEGIN PERFORM 1; END $$;
            SELECT $1
            """
        let statements = SQLStatementSplitter.split(script)
        #expect(statements.count == 5)
        #expect(statements[0].text.hasPrefix("CREATE TABLE t"))
        #expect(statements[1].keywords.prefix(2) == ["INSERT", "INTO"])
        #expect(statements[2].text.hasSuffix("$body$"))
        #expect(statements[3].text == "DO $$ BEGIN PERFORM 1; END $$")
        #expect(statements[4].text == "SELECT $1")
    }

    @Test func keepsStandardRoutineBodiesWhole() {
        let script = """
            CREATE FUNCTION add(a int, b int) RETURNS int LANGUAGE sql
            BEGIN ATOMIC
                SELECT CASE WHEN a > 0 THEN a ELSE 0 END + b;
            END;
            SELECT 1;
            """
        let statements = SQLStatementSplitter.split(script)
        #expect(statements.count == 2)
        #expect(statements[0].text.hasSuffix("END"))
        #expect(statements[1].text == "SELECT 1")
    }

    @Test func reportsWhereEachStatementStarts() {
        let script = "SELECT 1;\n\n  SELECT 2;\n"
        let statements = SQLStatementSplitter.split(script)
        #expect(statements.map { SourceLocation(utf8Offset: $0.utf8Offset, in: script) }
            == [SourceLocation(line: 1, column: 1), SourceLocation(line: 3, column: 3)])
    }

    @Test func ignoresCommentOnlyTails() {
        #expect(SQLStatementSplitter.split("SELECT 1; -- done\n/* end */\n").count == 1)
        #expect(SQLStatementSplitter.split("").isEmpty)
    }
}
