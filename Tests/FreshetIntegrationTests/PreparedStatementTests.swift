import Testing

@testable import Freshet

/// Prepared statements and array parameters, as the gateway's fan-out uses them.
@Suite struct PreparedStatementTests {
    @Test func arrayParametersArriveAsTheElementsGiven() throws {
        let database = try TestDatabase()
        let connection = try database.connect()
        let elements: [String?] = ["plain", "with \"quotes\"", #"back\slash"#, "comma, brace } and {", "", nil, "NULL", #"{"status": ["open"]}"#]
        let echoed = try connection.query(
            "SELECT e, e IS NULL FROM unnest($1::text[]) WITH ORDINALITY AS a (e, n) ORDER BY n", [PGConnection.arrayParameter(elements)])
        #expect(echoed.rows.map { $0[0] } == elements)
        #expect(echoed.rows.map { $0[1] } == elements.map { $0 == nil ? "t" : "f" }, "only a missing element is NULL, not the text NULL")
        #expect(try connection.scalar("SELECT cardinality($1::text[])", [PGConnection.arrayParameter([])]) == "0")
        #expect(try connection.scalar("SELECT ($1::jsonb[])[1] -> 'status' ->> 0", [PGConnection.arrayParameter([#"{"status": ["open"]}"#])]) == "open")
    }

    @Test func aPreparedStatementRunsAgainWithNewParametersAndReportsErrors() throws {
        let database = try TestDatabase()
        let connection = try database.connect()
        try connection.prepare("add", "SELECT $1::integer + $2::integer")
        #expect(try connection.query(prepared: "add", ["1", "2"]).rows == [["3"]])
        #expect(try connection.query(prepared: "add", ["40", "2"]).rows == [["42"]])
        #expect(throws: PostgresError.self) { try connection.query(prepared: "add", ["1", "x"]) }
        #expect(throws: PostgresError.self) { try connection.prepare("broken", "SELECT FROM no_such_table") }
        #expect(throws: PostgresError.self) { try connection.query(prepared: "never_prepared", []) }
        #expect(try connection.query(prepared: "add", ["2", "2"]).rows == [["4"]], "an error leaves the connection usable")
    }
}
