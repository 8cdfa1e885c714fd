import Testing

@testable import Freshet

@Suite struct PostgresDurationTests {
    @Test(arguments: [
        ("500ms", 0.5), ("5s", 5), ("1min", 60), ("2h", 7200), ("1d", 86400), ("1.5s", 1.5), ("250 ms", 0.25),
        ("10", 10), ("100us", 0.0001),
    ])
    func parsesPostgresForms(text: String, seconds: Double) throws {
        #expect(abs(try PostgresDuration.seconds(text) - seconds) < 1e-9)
    }

    @Test(arguments: ["", "5 minutes", "s", "-1s", "5x"])
    func refusesOtherForms(text: String) {
        #expect(throws: MigrateError.self) { try PostgresDuration.seconds(text) }
    }

    @Test func rendersMilliseconds() {
        #expect(PostgresDuration.milliseconds(5) == "5000ms")
        #expect(PostgresDuration.milliseconds(0.25) == "250ms")
    }
}
