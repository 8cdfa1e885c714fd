/// One line of a module's `requires` file: from `version` on, this module needs `module` at
/// `atLeast` or later.
///
/// ```
/// # ledger/requires
/// 5: foundation 1
/// 7: jobs 2
/// 12: foundation 9
/// ```
public struct ModuleRequirement: Equatable, Hashable, Sendable {
    public static let fileName = "requires"

    /// The requiring module.
    public var from: String
    /// The requiring module's migration.
    public var version: Int64
    /// The module it needs.
    public var module: String
    /// The version that module must be at, or later.
    public var atLeast: Int64

    public init(from: String, version: Int64, module: String, atLeast: Int64) {
        self.from = from
        self.version = version
        self.module = module
        self.atLeast = atLeast
    }

    /// Lowercase letters, digits and `_`, starting with a letter: a module name is a folder name and
    /// appears in output and in `migrate.history`.
    static func isValidModuleName(_ name: String) -> Bool {
        guard let first = name.utf8.first, first >= UInt8(ascii: "a") && first <= UInt8(ascii: "z") else { return false }
        return name.utf8.allSatisfy { ($0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z")) || ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9")) || $0 == UInt8(ascii: "_") }
    }

    /// Parses `module`'s `requires` file against the directory's migrations, by requiring version;
    /// every problem names the file and line.
    static func parse(_ text: String, module: String, in migrations: [Migration])
        -> Swift.Result<[Int64: [ModuleRequirement]], MigrateError>
    {
        let file = "\(module)/\(fileName)"
        var parsed: [Int64: [ModuleRequirement]] = [:]
        var problems: [MigrateError] = []
        let versionsByModule = Dictionary(grouping: migrations, by: { $0.module }).mapValues { Set($0.map(\.version)) }
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.prefix { $0 != "#" }.trimmingCharacters(in: .whitespaces)
            guard !line.isEmpty else { continue }
            func refuse(_ reason: String) { problems.append(.moduleRequirement(file: file, line: index + 1, reason: reason)) }
            let halves = line.split(separator: ":", maxSplits: 1)
            guard halves.count == 2, let version = Int64(halves[0].trimmingCharacters(in: .whitespaces)) else {
                refuse("expected `<version>: <module> <version>[, <module> <version>]`, found `\(line)`")
                continue
            }
            guard versionsByModule[module]?.contains(version) == true else {
                refuse("\(module) has no migration with version \(version)")
                continue
            }
            for clause in halves[1].split(separator: ",") {
                let words = clause.split(separator: " ", omittingEmptySubsequences: true)
                guard words.count == 2, let atLeast = Int64(words[1]) else {
                    refuse("expected `<module> <version>`, found `\(clause.trimmingCharacters(in: .whitespaces))`")
                    continue
                }
                let needed = String(words[0])
                guard needed != module else {
                    refuse("a module's own earlier migrations always come first: drop `\(needed) \(atLeast)`")
                    continue
                }
                guard let versions = versionsByModule[needed] else {
                    refuse("there is no module \(needed) in the directory")
                    continue
                }
                guard versions.contains(atLeast) else {
                    refuse("\(needed) has no migration with version \(atLeast)")
                    continue
                }
                parsed[version, default: []].append(ModuleRequirement(from: module, version: version, module: needed, atLeast: atLeast))
            }
        }
        return problems.isEmpty ? .success(parsed) : .failure(.several(problems))
    }
}
