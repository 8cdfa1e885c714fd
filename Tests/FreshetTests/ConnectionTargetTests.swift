import Testing

@testable import Freshet

/// Connection strings the server derives from the one it is given.
@Suite struct ConnectionTargetTests {
    @Test(arguments: [
        ("", "connect_timeout=3"),
        ("host=/tmp dbname=x", "host=/tmp dbname=x connect_timeout=3"),
        ("postgresql://u@/db?host=%2Ftmp%2Fs", "postgresql://u@/db?host=%2Ftmp%2Fs&connect_timeout=3"),
        ("postgres://u@h:5432/db", "postgres://u@h:5432/db?connect_timeout=3"),
        ("postgres://u@h/db?connect_timeout=10", "postgres://u@h/db?connect_timeout=10"),
        ("host=h connect_timeout=1", "host=h connect_timeout=1"),
    ])
    func aConnectTimeoutIsAddedUnlessOneIsSet(base: String, expected: String) {
        #expect(ConnectionTarget.conninfo(base, connectTimeoutSeconds: 3) == expected)
    }
}
