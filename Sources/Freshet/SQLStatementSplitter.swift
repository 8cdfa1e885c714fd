/// One top-level statement of a SQL script, as psql would send it.
public struct SQLStatement: Equatable, Sendable {
    /// The statement text without the terminating semicolon.
    public let text: String
    /// UTF-8 offset of the statement's first byte in the script.
    public let utf8Offset: Int
    /// Bare words outside quotes and comments, upper-cased; enough to classify the statement.
    public let keywords: [String]
}

/// Splits a SQL script into statements the way psql does.
///
/// It understands single-quoted and `E''` strings, quoted identifiers, dollar quoting, line
/// comments, nested block comments, and SQL-standard `BEGIN ATOMIC ... END` routine bodies.
public enum SQLStatementSplitter {
    private static let keywordLimit = 64

    public static func split(_ script: String) -> [SQLStatement] {
        let bytes = Array(script.utf8)
        var statements: [SQLStatement] = []
        var start = 0
        var index = 0
        var keywords: [String] = []
        var hasCode = false
        var atomicDepth = 0

        func isIdentifierByte(_ byte: UInt8) -> Bool {
            byte == UInt8(ascii: "_") || (byte >= 0x30 && byte <= 0x39) || (byte | 0x20 >= 0x61 && byte | 0x20 <= 0x7A)
                || byte >= 0x80
        }

        func finishStatement(end: Int) {
            if hasCode {
                let first = Self.skipTrivia(bytes, from: start, to: end)
                let text = String(decoding: bytes[first..<end], as: UTF8.self)
                statements.append(SQLStatement(text: text, utf8Offset: first, keywords: keywords))
            }
            keywords = []
            hasCode = false
            atomicDepth = 0
        }

        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "-"), UInt8(ascii: "/"):
                if let end = Self.commentEnd(bytes, at: index, limit: bytes.count) {
                    index = end
                } else {
                    hasCode = true
                    index += 1
                }
            case UInt8(ascii: "'"), UInt8(ascii: "\""):
                hasCode = true
                let backslashEscapes =
                    byte == UInt8(ascii: "'") && index > 0 && (bytes[index - 1] | 0x20) == UInt8(ascii: "e")
                    && (index < 2 || !isIdentifierByte(bytes[index - 2]))
                index = Self.quotedEnd(bytes, at: index, backslashEscapes: backslashEscapes)
            case UInt8(ascii: "$") where index == 0 || !isIdentifierByte(bytes[index - 1]):
                hasCode = true
                var tagEnd = index + 1
                while tagEnd < bytes.count, isIdentifierByte(bytes[tagEnd]) { tagEnd += 1 }
                let tagIsValid =
                    tagEnd < bytes.count && bytes[tagEnd] == UInt8(ascii: "$")
                    && (tagEnd == index + 1 || !(bytes[index + 1] >= 0x30 && bytes[index + 1] <= 0x39))
                guard tagIsValid else {
                    index += 1
                    continue
                }
                let tag = bytes[index...tagEnd]
                index = tagEnd + 1
                while index < bytes.count {
                    if bytes[index] == UInt8(ascii: "$"), bytes[index...].starts(with: tag) {
                        index += tag.count
                        break
                    }
                    index += 1
                }
                if index > bytes.count { index = bytes.count }
            case UInt8(ascii: ";") where atomicDepth == 0:
                finishStatement(end: index)
                index += 1
                start = index
            default:
                if isIdentifierByte(byte) {
                    hasCode = true
                    let wordStart = index
                    while index < bytes.count, isIdentifierByte(bytes[index]) { index += 1 }
                    let word = String(decoding: bytes[wordStart..<index], as: UTF8.self).uppercased()
                    if keywords.count < keywordLimit { keywords.append(word) }
                    let isRoutine =
                        keywords.first == "CREATE" && (keywords.contains("FUNCTION") || keywords.contains("PROCEDURE"))
                    if isRoutine && word == "BEGIN" {
                        atomicDepth += 1
                    } else if atomicDepth > 0 && word == "CASE" {
                        atomicDepth += 1
                    } else if atomicDepth > 0 && word == "END" {
                        atomicDepth -= 1
                    }
                } else {
                    if !isSpace(byte) { hasCode = true }
                    index += 1
                }
            }
        }
        finishStatement(end: min(index, bytes.count))
        return statements
    }

    /// The offset of the first byte after leading white space and comments.
    static func skipTrivia(_ bytes: [UInt8], from start: Int, to end: Int) -> Int {
        var index = start
        while index < end {
            if isSpace(bytes[index]) {
                index += 1
            } else if let after = commentEnd(bytes, at: index, limit: end) {
                index = after
            } else {
                break
            }
        }
        return index
    }

    /// The offset just past the string or quoted identifier opening at `index`; a doubled quote
    /// stands for itself, and so does a backslash-escaped one in an `E''` string.
    static func quotedEnd(_ bytes: [UInt8], at index: Int, backslashEscapes: Bool) -> Int {
        let quote = bytes[index]
        var end = index + 1
        while end < bytes.count {
            if backslashEscapes && bytes[end] == UInt8(ascii: "\\") {
                end += 2
            } else if bytes[end] == quote {
                guard end + 1 < bytes.count, bytes[end + 1] == quote else { return end + 1 }
                end += 2
            } else {
                end += 1
            }
        }
        return bytes.count
    }

    /// When a `--` or (nested) `/* */` comment starts at `index`, the offset just past it.
    static func commentEnd(_ bytes: [UInt8], at index: Int, limit: Int) -> Int? {
        guard index + 1 < limit else { return nil }
        func pair(_ at: Int, _ first: Character, _ second: Character) -> Bool {
            at + 1 < limit && bytes[at] == first.asciiValue! && bytes[at + 1] == second.asciiValue!
        }
        if pair(index, "-", "-") {
            var end = index
            while end < limit && bytes[end] != UInt8(ascii: "\n") { end += 1 }
            return end
        }
        guard pair(index, "/", "*") else { return nil }
        var end = index
        var depth = 0
        repeat {
            if pair(end, "/", "*") {
                depth += 1
                end += 2
            } else if pair(end, "*", "/") {
                depth -= 1
                end += 2
            } else {
                end += 1
            }
        } while depth > 0 && end < limit
        return min(end, limit)
    }

    static func isSpace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x0A || byte == 0x09 || byte == 0x0D || byte == 0x0C
    }
}
