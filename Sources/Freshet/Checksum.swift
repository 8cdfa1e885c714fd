import Crypto
import Foundation

/// The SHA-256 of a migration's normalised text, written `sha256:<hex>`.
///
/// Normalisation strips a UTF-8 byte-order mark and turns CRLF and lone CR into LF, so a file
/// that only changed line endings or gained a BOM keeps its checksum.
public struct Checksum: Hashable, Sendable, CustomStringConvertible {
    public static let algorithm = "sha256"

    public let hex: String

    public init(normalizedText: String) {
        hex = Self.hexDigest(Data(normalizedText.utf8))
    }

    public init(rawBytes: Data) {
        self.init(normalizedText: Self.normalize(rawBytes))
    }

    /// A digest already in hex, as the checksum cache keeps it.
    init(hex: String) {
        self.hex = hex
    }

    /// Parses a stored `sha256:<hex>` value.
    public init?(stored: String) {
        let parts = stored.split(separator: ":", maxSplits: 1)
        guard parts.count == 2, parts[0] == Self.algorithm, parts[1].count == 64 else { return nil }
        hex = String(parts[1])
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

    static func hexDigest<D: DataProtocol>(_ data: D) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var hex = [UInt8]()
        hex.reserveCapacity(64)
        for byte in SHA256.hash(data: data) {
            hex.append(digits[Int(byte >> 4)])
            hex.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: hex, as: UTF8.self)
    }
}
