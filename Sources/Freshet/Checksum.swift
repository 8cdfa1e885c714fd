import Crypto
import Foundation

/// The SHA-256 of a migration's normalised text, written `sha256:<hex>`.
///
/// Normalisation strips a UTF-8 byte-order mark and turns CRLF and lone CR into LF, so a file
/// that only changed line endings or gained a BOM keeps its checksum.
public struct Checksum: Hashable, Sendable, CustomStringConvertible {
    public static let algorithm = "sha256"

    /// The digest's 32 bytes as four big-endian words: compared and stored without allocating,
    /// which `status` over thousands of files feels.
    let words: SIMD4<UInt64>

    init(words: SIMD4<UInt64>) {
        self.words = words
    }

    public init(normalizedText: String) {
        self.init(digestOf: Data(normalizedText.utf8))
    }

    private init<D: DataProtocol>(digestOf data: D) {
        var words = SIMD4<UInt64>()
        for (index, byte) in SHA256.hash(data: data).enumerated() {
            words[index / 8] = words[index / 8] << 8 | UInt64(byte)
        }
        self.words = words
    }

    public init(rawBytes: Data) {
        self.init(normalizedText: Self.normalize(rawBytes))
    }

    /// Parses 64 lowercase hex digits, as the checksum cache and the history keep them.
    init?(hex digits: UnsafeBufferPointer<UInt8>) {
        guard digits.count == 64 else { return nil }
        // Sixteen digits into a plain word at a time: indexing a SIMD vector per digit costs more.
        func word(_ start: Int) -> UInt64? {
            var word: UInt64 = 0
            for digit in digits[start..<(start + 16)] {
                let value: UInt8
                switch digit {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): value = digit - UInt8(ascii: "0")
                case UInt8(ascii: "a")...UInt8(ascii: "f"): value = digit - UInt8(ascii: "a") + 10
                default: return nil
                }
                word = word << 4 | UInt64(value)
            }
            return word
        }
        guard let first = word(0), let second = word(16), let third = word(32), let fourth = word(48) else { return nil }
        self.words = SIMD4(first, second, third, fourth)
    }

    /// Parses a stored `sha256:<hex>` value.
    public init?(stored: String) {
        var stored = stored
        let parsed = stored.withUTF8 { bytes -> Checksum? in
            let prefix = Self.algorithm.utf8.count + 1
            guard bytes.starts(with: (Self.algorithm + ":").utf8) else { return nil }
            return Checksum(hex: UnsafeBufferPointer(rebasing: bytes[prefix...]))
        }
        guard let parsed else { return nil }
        self = parsed
    }

    /// Whether a checksum the history stored as `sha256:<hex>` is this one.
    public func matches(stored: String?) -> Bool {
        stored.flatMap(Checksum.init(stored:)) == self
    }

    /// The digest as 64 lowercase hex digits.
    public var hex: String {
        let digits = Array("0123456789abcdef".utf8)
        return String(unsafeUninitializedCapacity: 64) { buffer in
            for index in 0..<64 {
                buffer[index] = digits[Int(words[index / 16] >> (60 - 4 * UInt64(index % 16)) & 0xF)]
            }
            return 64
        }
    }

    public var description: String { "\(Self.algorithm):\(hex)" }

    /// Decodes file data as UTF-8 without a BOM and with LF line endings only.
    public static func normalize(_ bytes: Data) -> String {
        normalize([UInt8](bytes))
    }

    /// Decodes file bytes as UTF-8 without a BOM and with LF line endings only.
    public static func normalize(_ bytes: [UInt8]) -> String {
        var body = bytes[...]
        if body.starts(with: [0xEF, 0xBB, 0xBF]) { body = body.dropFirst(3) }
        guard body.contains(0x0D) else { return String(decoding: body, as: UTF8.self) }
        var output = [UInt8]()
        output.reserveCapacity(body.count)
        var previousWasCR = false
        for byte in body {
            if byte == 0x0D {
                output.append(0x0A)
                previousWasCR = true
                continue
            }
            if byte == 0x0A && previousWasCR {
                previousWasCR = false
                continue
            }
            previousWasCR = false
            output.append(byte)
        }
        return String(decoding: output, as: UTF8.self)
    }

    /// The SHA-256 of `data` in lowercase hex.
    public static func hexDigest<D: DataProtocol>(_ data: D) -> String {
        Checksum(digestOf: data).hex
    }
}
