import Foundation
import Testing

@testable import Freshet

/// Streaming a logical slot (wal2json) over the replication protocol: what is confirmed is not sent
/// again, and what is not confirmed is.
@Suite struct LogicalReplicationTests {
    /// wal2json's format 2: one JSON object per change, and B/C around each transaction.
    static let options = [("format-version", "2"), ("include-lsn", "1"), ("include-transaction", "1")]

    /// The changes (action and table) of every message until `count` of them are not B or C,
    /// and the LSN of the last commit seen.
    static func read(_ stream: LogicalReplicationStream, changes count: Int) throws -> (actions: [String], lastCommit: LogSequenceNumber?) {
        var actions: [String] = []
        var lastCommit: LogSequenceNumber?
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline, actions.count < count || lastCommit == nil {
            guard case .data(let start, _, let payload)? = try stream.next(timeout: 0.5) else { continue }
            let change = try #require(try JSONSerialization.jsonObject(with: Data(payload)) as? [String: Any])
            let action = try #require(change["action"] as? String)
            if action == "C" { lastCommit = start; if actions.count >= count { break } }
            if action != "B" && action != "C" { actions.append(action + ":" + ((change["table"] as? String) ?? "")); lastCommit = nil }
        }
        return (actions, lastCommit)
    }

    @Test func confirmedChangesAreNotSentAgainAndUnconfirmedOnesAre() throws {
        let database = try TestDatabase()
        let connection = try database.connect()
        let slot = "it_" + database.name
        try connection.execute("SELECT pg_create_logical_replication_slot('\(slot)', 'wal2json')")
        defer { _ = try? database.connect().execute("SELECT pg_drop_replication_slot('\(slot)')") }
        try connection.execute(
            """
            CREATE TABLE notes (id int PRIMARY KEY, body text);
            INSERT INTO notes VALUES (1, 'a'), (2, 'b');
            UPDATE notes SET body = 'c' WHERE id = 1;
            DELETE FROM notes WHERE id = 2;
            """)
        var stream: LogicalReplicationStream? = try LogicalReplicationStream(conninfo: database.conninfo, slot: slot, options: Self.options)
        let first = try Self.read(stream!, changes: 4)
        #expect(first.actions == ["I:notes", "I:notes", "U:notes", "D:notes"])
        // Not confirmed: a new stream starts at the same place.
        stream = nil
        stream = try LogicalReplicationStream(conninfo: database.conninfo, slot: slot, options: Self.options)
        let again = try Self.read(stream!, changes: 4)
        #expect(again.actions == first.actions, "an unconfirmed change is sent again")
        try stream!.confirm(try #require(again.lastCommit))
        // The walsender records a confirmation with its next reply; give it one.
        _ = try stream!.next(timeout: 0.5)
        stream = nil
        try connection.execute("INSERT INTO notes VALUES (3, 'd')")
        stream = try LogicalReplicationStream(conninfo: database.conninfo, slot: slot, options: Self.options)
        #expect(try Self.read(stream!, changes: 1).actions == ["I:notes"], "a confirmed change is not sent again")
        #expect(try connection.scalar("SELECT active FROM pg_replication_slots WHERE slot_name = '\(slot)'") == "t")
    }

    @Test func aMissingSlotIsAClearErrorAndPositionsParse() throws {
        let database = try TestDatabase()
        #expect { try LogicalReplicationStream(conninfo: database.conninfo, slot: "no_such_slot") } throws: { error in
            (error as? PostgresError)?.sqlState == "42704"
        }
        #expect(LogSequenceNumber("16/B374D848")?.value == 0x16_B374_D848)
        #expect(LogSequenceNumber("16/B374D848")?.description == "16/B374D848")
        #expect(LogSequenceNumber("0/0")?.value == 0)
        for bad in ["", "16", "16/", "/1", "x/1", "1/2/3", "123456789/1"] { #expect(LogSequenceNumber(bad) == nil, "\(bad)") }
        #expect(throws: PostgresError.self) { try LogicalReplicationStream.parse(UnsafeRawBufferPointer(start: [UInt8(ascii: "w")], count: 1)) }
    }
}
