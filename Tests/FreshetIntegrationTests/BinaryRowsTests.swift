import Testing

@testable import Freshet

/// Binary results read as the server's own text formatting would have them.
@Suite struct BinaryRowsTests {
    @Test func timestampsMatchTheServersISO8601() throws {
        let database = try TestDatabase()
        let connection = try database.connect()
        let pairs = try connection.rows(
            """
            SELECT t, to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
            FROM unnest(ARRAY['2026-12-01 13:42:43.535608+00', '2000-01-01 00:00:00+00', '1999-12-31 23:59:59.999999+00',
                              '2000-02-29 12:00:00.000001+00', '2100-03-01 00:00:00+00', '1900-02-28 23:00:00+00',
                              '1970-01-01 00:00:00+00', '0001-01-01 00:00:00+00', '9999-12-31 23:59:59.999999+00',
                              '2024-06-30 23:59:59+05:30']::timestamptz[]) t
            """,
            binary: true
        ) { row in (row.timestampMicroseconds(0).map(PostgresTimestamp.iso8601(microsecondsSince2000:)), row[1]) }
        #expect(pairs.count == 10)
        for (ours, server) in pairs { #expect(ours == server) }
        let infinite = try connection.rows("SELECT 'infinity'::timestamptz, '-infinity'::timestamptz, NULL::timestamptz", binary: true) { row in
            [row.timestampMicroseconds(0), row.timestampMicroseconds(1), row.timestampMicroseconds(2)].map { $0.map(PostgresTimestamp.iso8601) }
        }
        #expect(infinite == [["infinity", "-infinity", nil]])
    }

    @Test func intervalsMatchTheServersEpoch() throws {
        let database = try TestDatabase()
        let connection = try database.connect()
        let pairs = try connection.rows(
            """
            SELECT d, (extract(epoch FROM d) * 1000000)::bigint
            FROM unnest(ARRAY['12.345678 seconds', '1 day 02:03:04', '-3 days 00:00:01', '1 year 2 months 3 days',
                              '-14 months', '00:00:00']::interval[]) d
            """,
            binary: true
        ) { row in (row.intervalMicroseconds(0), row.integer(1)) }
        #expect(pairs.count == 6)
        for (ours, server) in pairs { #expect(ours == server) }
    }

    @Test func integersAndTextReadInEitherFormat() throws {
        let database = try TestDatabase()
        let connection = try database.connect()
        let sql = "SELECT (-2)::smallint, (-70000)::integer, (-5000000000)::bigint, 'zürich ✓'::text, NULL::bigint"
        for binary in [true, false] {
            let rows = try connection.rows(sql, binary: binary) { row in
                [row.integer(0), row.integer(1), row.integer(2), row.integer(4)]
            }
            #expect(rows == [[-2, -70000, -5_000_000_000, nil]])
            #expect(try connection.rows(sql, binary: binary) { $0[3] } == ["zürich ✓"])
        }
    }
}
