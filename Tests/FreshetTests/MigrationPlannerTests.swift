import Testing

@testable import Freshet
import FreshetTestSupport

@Suite struct MigrationPlannerTests {
    func migrations(_ versions: [Int64]) throws -> [Migration] {
        let fixture = try MigrationFixture(Dictionary(uniqueKeysWithValues: versions.map { ("\($0)_m", "SELECT \($0);") }))
        return try fixture.directory().migrations
    }

    @Test func upAppliesEveryPendingVersionInOrder() throws {
        let plan = MigrationPlanner.up(try migrations([1, 2, 3, 10]), applied: [1])
        #expect(plan.map(\.version) == [2, 3, 10])
    }

    @Test func upStopsAtTheTarget() throws {
        let plan = MigrationPlanner.up(try migrations([1, 2, 3, 10]), applied: [1], target: 3)
        #expect(plan.map(\.version) == [2, 3])
    }

    @Test func upIncludesOutOfOrderFiles() throws {
        let plan = MigrationPlanner.up(try migrations([1, 2, 3]), applied: [1, 3])
        #expect(plan.map(\.version) == [2])
    }

    @Test func downRollsBackOneStepByDefault() {
        #expect(MigrationPlanner.down(applied: [1, 2, 3], target: .steps(1)) == [3])
    }

    @Test func downRollsBackSteps() {
        #expect(MigrationPlanner.down(applied: [3, 1, 2], target: .steps(2)) == [3, 2])
        #expect(MigrationPlanner.down(applied: [1], target: .steps(5)) == [1])
    }

    @Test func downRollsBackToAVersion() {
        #expect(MigrationPlanner.down(applied: [1, 2, 3, 10], target: .version(2)) == [10, 3])
        #expect(MigrationPlanner.down(applied: [1, 2], target: .version(0)) == [2, 1])
        #expect(MigrationPlanner.down(applied: [1, 2], target: .version(2)).isEmpty)
    }
}
