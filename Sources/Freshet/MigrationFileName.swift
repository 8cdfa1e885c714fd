/// The parts of a migration file name: golang-migrate's `<version>_<name>.<up|down>.sql`, or
/// dbmate's `<version>_<name>.sql`, whose one file holds both directions.
public struct MigrationFileName: Equatable, Sendable {
    public let version: Int64
    public let name: String
    /// nil for a dbmate file: its `-- migrate:up` and `-- migrate:down` sections hold the directions.
    public let direction: MigrationScript.Direction?

    public init(version: Int64, name: String, direction: MigrationScript.Direction?) {
        self.version = version
        self.name = name
        self.direction = direction
    }

    /// Parses a file name, or explains why it is not a migration name.
    public static func parse(_ fileName: String) -> Swift.Result<MigrationFileName, MigrateError> {
        func malformed(_ why: String) -> Swift.Result<MigrationFileName, MigrateError> {
            .failure(.malformedFileName(file: fileName, reason: why))
        }
        // On the UTF-8 view throughout: String's suffix and prefix methods cost grapheme breaking
        // on every name of a large directory.
        let bytes = fileName.utf8
        let direction: MigrationScript.Direction?
        let suffixLength: Int
        if bytes.elementsEndWith(".up.sql") {
            (direction, suffixLength) = (.up, 7)
        } else if bytes.elementsEndWith(".down.sql") {
            (direction, suffixLength) = (.down, 9)
        } else if bytes.elementsEndWith(".sql") {
            (direction, suffixLength) = (nil, 4)
        } else {
            return malformed("it must end in .up.sql or .down.sql (or .sql for a dbmate file)")
        }
        let stem = bytes.dropLast(suffixLength)
        let digits = stem.prefix { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
        guard !digits.isEmpty else {
            return malformed("it must start with a version number, as in 0001_create_users.up.sql")
        }
        // golang-migrate reads versions as unsigned integers, so version 0 is a version like any other.
        var version: Int64 = 0
        for digit in digits {
            let (times, overflow) = version.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times.addingReportingOverflow(Int64(digit - UInt8(ascii: "0")))
            guard !overflow && !overflow2 else {
                return malformed("the version \(Substring(digits)) must be an integer below 2^63")
            }
            version = sum
        }
        let rest = stem[digits.endIndex...]
        guard rest.first == UInt8(ascii: "_"), rest.count > 1 else {
            return malformed("the version must be followed by _ and a name, as in \(Substring(digits))_create_users")
        }
        let name = Substring(rest.dropFirst())
        // migrate.sum separates names from hashes with a space, and names appear in one-line output.
        let plainASCII = name.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "/") }
        guard plainASCII || !name.unicodeScalars.contains(where: { $0.properties.isWhitespace || $0 == "/" || $0.properties.generalCategory == .control }) else {
            return malformed("the name may not hold spaces, control characters or /")
        }
        return .success(MigrationFileName(version: version, name: String(name), direction: direction))
    }
}

extension String.UTF8View {
    /// Whether the bytes end with `ending`'s, without String's Unicode-aware comparison.
    fileprivate func elementsEndWith(_ ending: StaticString) -> Bool {
        let tail = UnsafeBufferPointer(start: ending.utf8Start, count: ending.utf8CodeUnitCount)
        return count > tail.count && suffix(tail.count).elementsEqual(tail)
    }
}
