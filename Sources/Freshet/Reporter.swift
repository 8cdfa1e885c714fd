import Foundation

/// Writes the runner's progress: one line per migration, notices prefixed by their file.
public final class Reporter: @unchecked Sendable {
    public enum Verbosity: Int, Comparable, Sendable {
        case quiet, normal, verbose
        public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
    }

    public let verbosity: Verbosity
    private let useColor: Bool
    private let write: @Sendable (String) -> Void

    /// A reporter for standard output; colour only when it is a terminal and `NO_COLOR` is unset.
    public init(verbosity: Verbosity = .normal, write: (@Sendable (String) -> Void)? = nil) {
        self.verbosity = verbosity
        let environment = ProcessInfo.processInfo.environment
        self.useColor =
            write == nil && isatty(STDOUT_FILENO) == 1 && environment["NO_COLOR"] == nil
            && environment["TERM"] != "dumb"
        self.write = write ?? { line in
            FileHandle.standardOutput.write(Data((line + "\n").utf8))
        }
    }

    /// A line shown unless `--quiet`.
    public func info(_ line: String) {
        if verbosity >= .normal { write(line) }
    }

    /// A line shown only with `--verbose`.
    public func detail(_ line: String) {
        if verbosity >= .verbose { write(paint(line, "2")) }
    }

    /// A line shown even with `--quiet`.
    public func always(_ line: String) {
        write(line)
    }

    /// The one line a migration step gets, with its duration.
    public func step(_ action: String, _ label: String, milliseconds: Double? = nil) {
        let timing = milliseconds.map { String(format: " (%.1f ms)", $0) } ?? ""
        let color = action.hasPrefix("fail") ? "31" : action.hasPrefix("appl") ? "32" : "33"
        info("\(paint(action.padding(toLength: max(11, action.count), withPad: " ", startingAt: 0), color)) \(label)\(timing)")
    }

    /// A server notice raised while `file` ran.
    public func notice(_ notice: PostgresError, file: String) {
        guard verbosity >= .normal else { return }
        write("\(file): \(paint("\(notice.severity): \(notice.message)", "36"))")
    }

    private func paint(_ text: String, _ code: String) -> String {
        useColor ? "\u{1B}[\(code)m\(text)\u{1B}[0m" : text
    }
}
