import Foundation
import Testing

@testable import Freshet

@Suite struct ChecksumTests {
    let text = "CREATE TABLE t (id int);\nINSERT INTO t VALUES (1);\n"

    @Test func lineEndingsAndByteOrderMarkDoNotChangeTheChecksum() {
        let lf = Checksum(rawBytes: Data(text.utf8))
        let crlf = Checksum(rawBytes: Data(text.replacingOccurrences(of: "\n", with: "\r\n").utf8))
        let cr = Checksum(rawBytes: Data(text.replacingOccurrences(of: "\n", with: "\r").utf8))
        let bom = Checksum(rawBytes: Data([0xEF, 0xBB, 0xBF] + Array(text.utf8)))
        let bomCRLF = Checksum(rawBytes: Data([0xEF, 0xBB, 0xBF] + Array(text.replacingOccurrences(of: "\n", with: "\r\n").utf8)))
        #expect(Set([lf, crlf, cr, bom, bomCRLF]).count == 1)
    }

    @Test func oneCharacterEditChangesTheChecksum() {
        let original = Checksum(rawBytes: Data(text.utf8))
        let edited = Checksum(rawBytes: Data(text.replacingOccurrences(of: "(1)", with: "(2)").utf8))
        #expect(original != edited)
    }

    @Test func storedFormNamesTheAlgorithm() {
        let checksum = Checksum(normalizedText: "")
        #expect(checksum.description == "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(Checksum(stored: checksum.description) == checksum)
        #expect(Checksum(stored: "md5:abc") == nil)
        #expect(Checksum.hexDigest(Data("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    @Test func onlyTheExactStoredFormMatches() {
        let checksum = Checksum(normalizedText: "SELECT 1;")
        #expect(checksum.matches(stored: checksum.description))
        let hex = checksum.hex
        for other in [nil, hex, "sha256:" + hex.uppercased(), "sha256:" + hex.dropLast(), "sha256:" + hex + "0",
                      "sha256:" + hex.dropLast() + "g", "sha1:" + hex, "sha256:" + String(hex.reversed())] {
            #expect(!checksum.matches(stored: other), "\(other ?? "nil")")
        }
    }

    @Test func normalizationKeepsBlankLinesAndNonASCII() {
        #expect(Checksum.normalize(Data("a\r\n\r\nb\rc\n".utf8)) == "a\n\nb\nc\n")
        #expect(Checksum.normalize(Data("é\r\n".utf8)) == "é\n")
    }
}
