/// PostgreSQL's binary timestamps as the ISO 8601 text `status --json` prints.
public enum PostgresTimestamp {
    /// `2026-12-01T13:42:43.535608Z` for microseconds since 2000-01-01 00:00 UTC; PostgreSQL's
    /// `infinity` and `-infinity` as those words.
    public static func iso8601(microsecondsSince2000 value: Int64) -> String {
        if value == .max { return "infinity" }
        if value == .min { return "-infinity" }
        let (seconds, microseconds) = floorDivision(value, 1_000_000)
        let (days, secondOfDay) = floorDivision(seconds, 86_400)
        let (year, month, day) = civilDate(daysSince1970: days + 10_957)
        var text = ""
        text.reserveCapacity(27)
        func append(_ number: Int64, width: Int) {
            let digits = String(number)
            text += String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        append(year, width: 4)
        text += "-"
        append(month, width: 2)
        text += "-"
        append(day, width: 2)
        text += "T"
        append(secondOfDay / 3600, width: 2)
        text += ":"
        append(secondOfDay / 60 % 60, width: 2)
        text += ":"
        append(secondOfDay % 60, width: 2)
        text += "."
        append(microseconds, width: 6)
        text += "Z"
        return text
    }

    private static func floorDivision(_ value: Int64, _ divisor: Int64) -> (Int64, Int64) {
        let quotient = value / divisor - (value % divisor < 0 ? 1 : 0)
        return (quotient, value - quotient * divisor)
    }

    /// The proleptic Gregorian date of a day count from 1970-01-01, by Howard Hinnant's
    /// `civil_from_days`: eras of 400 years, each starting on 1 March.
    private static func civilDate(daysSince1970 days: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let shifted = days + 719_468
        let era = (shifted >= 0 ? shifted : shifted - 146_096) / 146_097
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}
