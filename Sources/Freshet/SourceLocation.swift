/// A one-based line and column inside a SQL text.
public struct SourceLocation: Equatable, Sendable, CustomStringConvertible {
    public var line: Int
    public var column: Int

    public init(line: Int, column: Int) {
        self.line = line
        self.column = column
    }

    /// The location of a one-based character position, as the server counts characters.
    public init(characterPosition: Int, in text: String) {
        var line = 1
        var column = 1
        var remaining = characterPosition - 1
        for character in text.unicodeScalars {
            guard remaining > 0 else { break }
            if character == "\n" {
                line += 1
                column = 1
            } else {
                column += 1
            }
            remaining -= 1
        }
        self.init(line: line, column: column)
    }

    /// The location of a UTF-8 byte offset.
    public init(utf8Offset: Int, in text: String) {
        let prefix = text.utf8.prefix(utf8Offset)
        let newlines = prefix.lazy.filter { $0 == UInt8(ascii: "\n") }.count
        let lastLine = prefix.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).last ?? []
        let column = String(decoding: lastLine, as: UTF8.self).unicodeScalars.count + 1
        self.init(line: newlines + 1, column: column)
    }

    /// The text of this location's line.
    public func lineText(in text: String) -> String {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        guard line - 1 < lines.count else { return "" }
        return String(lines[line - 1])
    }

    public var description: String { "\(line):\(column)" }
}
