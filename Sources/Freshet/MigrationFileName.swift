/// The parts of a golang-migrate style file name: `<version>_<name>.<up|down>.sql`.
public struct MigrationFileName: Equatable, Sendable {
    public let version: Int64
    public let name: String
    public let direction: MigrationScript.Direction

    /// Parses a file name, or explains why it is not a migration name.
    public static func parse(_ fileName: String) -> Swift.Result<MigrationFileName, MigrateError> {
        func malformed(_ why: String) -> Swift.Result<MigrationFileName, MigrateError> {
            .failure(.malformedFileName(file: fileName, reason: why))
        }
        let direction: MigrationScript.Direction
        let stem: Substring
        if fileName.hasSuffix(".up.sql") {
            direction = .up
            stem = fileName.dropLast(".up.sql".count)
        } else if fileName.hasSuffix(".down.sql") {
            direction = .down
            stem = fileName.dropLast(".down.sql".count)
        } else {
            return malformed("it must end in .up.sql or .down.sql")
        }
        let digits = stem.prefix { $0.isASCII && $0.isNumber }
        guard !digits.isEmpty else {
            return malformed("it must start with a version number, as in 0001_create_users.up.sql")
        }
        guard let version = Int64(digits), version > 0 else {
            return malformed("the version \(digits) must be a positive integer below 2^63")
        }
        let rest = stem.dropFirst(digits.count)
        guard rest.first == "_", rest.count > 1 else {
            return malformed("the version must be followed by _ and a name, as in \(digits)_create_users")
        }
        let name = rest.dropFirst()
        let allowed = name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "_-.".contains($0)) }
        guard allowed else {
            return malformed("the name may hold only ASCII letters, digits, _, - and .")
        }
        return .success(MigrationFileName(version: version, name: String(name), direction: direction))
    }
}
