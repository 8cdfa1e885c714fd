import Foundation

/// Parses durations the way PostgreSQL's time settings do: `500ms`, `5s`, `1min`, `2h`, `1d`.
public enum PostgresDuration {
    private static let units: [(suffix: String, seconds: Double)] = [
        ("us", 1e-6), ("ms", 1e-3), ("min", 60), ("s", 1), ("h", 3600), ("d", 86400),
    ]

    /// The number of seconds in `text`; a bare number means seconds.
    public static func seconds(_ text: String) throws -> Double {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let numberPart = trimmed.prefix { $0.isNumber || $0 == "." }
        let unit = trimmed.dropFirst(numberPart.count).trimmingCharacters(in: .whitespaces)
        guard let value = Double(numberPart), value >= 0 else { throw MigrateError.invalidDuration(text) }
        if unit.isEmpty { return value }
        guard let scale = units.first(where: { $0.suffix == unit })?.seconds else {
            throw MigrateError.invalidDuration(text)
        }
        return value * scale
    }

    /// The value as whole milliseconds, the form `SET lock_timeout` takes.
    public static func milliseconds(_ seconds: Double) -> String {
        "\(Int((seconds * 1000).rounded()))ms"
    }
}
