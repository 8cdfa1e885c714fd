import Testing

@testable import Freshet
import FreshetTestSupport

@Suite struct HistoryDriftTests {
    func row(_ version: Int64, _ name: String, _ checksum: String) -> HistoryStore.Row {
        HistoryStore.Row(
            version: version, name: name, upChecksum: checksum, downChecksum: nil, state: .applied, appliedAt: "",
            appliedBy: "")
    }

    @Test func findsChangedMissingAndOutOfOrderFiles() throws {
        let fixture = try MigrationFixture(["1_a": "SELECT 1;", "2_b": "SELECT 2;", "4_d": "SELECT 4;"])
        let directory = try fixture.directory()
        let rows = [
            row(1, "a", directory.migration(version: 1)!.up.checksum.description),
            row(3, "c", "sha256:x"),
            row(4, "d", "sha256:edited"),
        ]
        let drift = HistoryDrift(directory: directory, rows: rows)
        #expect(drift.changed == ["4_d.up.sql"])
        #expect(drift.missing == ["3_c.up.sql"])
        #expect(drift.outOfOrder == ["2_b.up.sql"])
        #expect(drift.problems(allowOutOfOrder: false).count == 3)
        #expect(drift.problems(allowOutOfOrder: true).count == 2)
    }

    @Test func aMatchingHistoryHasNoDrift() throws {
        let fixture = try MigrationFixture(["1_a": "SELECT 1;", "2_b": "SELECT 2;"])
        let directory = try fixture.directory()
        let drift = HistoryDrift(
            directory: directory, rows: [row(1, "a", directory.migration(version: 1)!.up.checksum.description)])
        #expect(drift.isEmpty)
    }
}
