import Testing

@testable import Freshet
import FreshetTestSupport

@Suite struct MigrationStatusTests {
    func row(_ version: Int64, _ state: HistoryStore.Row.State = .applied, checksum: String, down: String? = nil) -> HistoryStore.Row {
        HistoryStore.Row(
            version: version, name: "v\(version)", upChecksum: checksum, downChecksum: down, state: state,
            appliedAt: "2026-12-01T00:00:00.000000Z", appliedBy: "")
    }

    @Test func mergesUnsortedRowsWithFilesInVersionOrder() throws {
        let fixture = try MigrationFixture(["1_a": "SELECT 1;", "2_b": "SELECT 2;", "4_d": "SELECT 4;", "5_e": "SELECT 5;", "6_f": "SELECT 6;"])
        let directory = try fixture.directory()
        let stored = { (version: Int64) in directory.migration(version: version)!.up.checksum.description }
        let rows = [row(6, .failed, checksum: stored(6)), row(4, checksum: stored(4)), row(1, checksum: stored(2)), row(3, checksum: "sha256:gone")]
        let entries = MigrationStatus.merge(directory: directory, rows: rows)
        #expect(entries.map(\.version) == [1, 2, 3, 4, 5, 6])
        #expect(entries.map(\.state) == [.changed, .pending, .missing, .applied, .pending, .failed])
        // Pending files older than the newest history row, failed or not, are out of order.
        #expect(entries.map(\.outOfOrder) == [false, true, false, false, true, false])
        #expect(entries[2].name == "v3" && entries[2].appliedAt != nil)
    }

    @Test func anEmptyHistoryLeavesEveryFilePending() throws {
        let directory = try MigrationFixture(["1_a": "SELECT 1;", "2_b": "SELECT 2;"]).directory()
        let entries = MigrationStatus.merge(directory: directory, rows: [])
        #expect(entries.map(\.state) == [.pending, .pending])
        #expect(!entries.contains { $0.outOfOrder })
    }

    @Test func theTableShowsEachStateAndTheSummary() throws {
        let directory = try MigrationFixture(["1_a": "SELECT 1;", "2_b": "SELECT 2;", "3_c": "SELECT 3;"]).directory()
        let two = directory.migration(version: 2)!
        let rows = [row(2, checksum: two.up.checksum.description, down: two.down?.checksum.description)]
        let table = StatusReport.table(MigrationStatus.merge(directory: directory, rows: rows))
        #expect(table == """
            state     version              name
            pending*  1                    a
            applied   2                    v2  (2026-12-01T00:00:00.000000Z)
            pending   3                    c
            1 applied, 2 pending
            * older than the newest applied migration: `up` needs --allow-out-of-order
            """)
        let edited = StatusReport.table(MigrationStatus.merge(directory: directory, rows: [row(2, checksum: two.up.checksum.description)]))
        #expect(edited.contains("v2  (2026-12-01T00:00:00.000000Z)  down file changed since applied\n"))
    }
}
