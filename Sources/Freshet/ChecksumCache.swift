import Foundation

/// Checksums of migration files remembered by inode, size and change time, so `status` can stat a
/// file instead of reading and hashing it, as git's index does.
///
/// An entry counts only while the file's device, inode, size, modification and change times all
/// match, and its change time lies over a second before the entry was written: a write within the
/// same timestamp tick as the hashing would otherwise go unseen. Any write to a file moves its
/// change time, which no user can set back, so an edited file is always read again.
struct ChecksumCache: Sendable {
    struct Identity: Equatable, Sendable {
        var device: UInt64, inode: UInt64, size: Int64, modified: Int64, changed: Int64

        /// The identity of `name` inside the directory open as `directory`: no path walk per file.
        init?(directory: Int32, name: String) {
            var info = stat()
            guard fstatat(directory, name, &info, 0) == 0 else { return nil }
            device = UInt64(info.st_dev)
            inode = UInt64(info.st_ino)
            size = Int64(info.st_size)
            modified = Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec)
            changed = Int64(info.st_ctim.tv_sec) * 1_000_000_000 + Int64(info.st_ctim.tv_nsec)
        }

        init(device: UInt64, inode: UInt64, size: Int64, modified: Int64, changed: Int64) {
            self.device = device
            self.inode = inode
            self.size = size
            self.modified = modified
            self.changed = changed
        }
    }

    /// What a file held when it was hashed: one checksum, or a dbmate file's up and optional down.
    struct Entry: Sendable {
        var identity: Identity
        var up: Checksum
        var down: Checksum?
    }

    private static let header = "freshet-checksums 1"
    private static let racyWindow: Int64 = 1_000_000_000

    let file: String
    private(set) var entries: [String: Entry] = [:]
    private var writtenAt: Int64 = 0

    /// The cache for `directory` under `$XDG_CACHE_HOME/freshet` (or `~/.cache/freshet`); nil without either.
    init?(directory: String) {
        let environment = ProcessInfo.processInfo.environment
        guard let root = environment["XDG_CACHE_HOME"].flatMap({ $0.isEmpty ? nil : $0 })
            ?? environment["HOME"].map({ $0 + "/.cache" })
        else { return nil }
        let absolute = URL(fileURLWithPath: directory).standardizedFileURL.path
        file = "\(root)/freshet/checksums-\(Checksum.hexDigest(Data(absolute.utf8)).prefix(32))"
        guard let bytes = MigrationDirectory.readFile(file) else { return }
        // Parsed by hand over bytes: String.split would cost more than the reads the cache saves.
        entries.reserveCapacity(bytes.count / 100)
        // One array of field bounds for every line: an array per line would cost an allocation each.
        var fields: [Range<Int>] = []
        fields.reserveCapacity(9)
        bytes.withUnsafeBufferPointer { buffer in
            var lineStart = 0
            var isHeader = true
            while lineStart < buffer.count {
                var lineEnd = lineStart
                while lineEnd < buffer.count && buffer[lineEnd] != UInt8(ascii: "\n") { lineEnd += 1 }
                let line = UnsafeBufferPointer(rebasing: buffer[lineStart..<lineEnd])
                lineStart = lineEnd + 1
                if isHeader {
                    isHeader = false
                    let header = Array((Self.header + " ").utf8)
                    guard line.starts(with: header), let stamp = Self.integer(line[header.count...]) else { return }
                    writtenAt = stamp
                    continue
                }
                fields.removeAll(keepingCapacity: true)
                var fieldStart = 0
                for index in 0...line.count where index == line.count || line[index] == UInt8(ascii: "\t") {
                    fields.append(fieldStart..<index)
                    fieldStart = index + 1
                }
                guard fields.count == 8, let device = Self.unsigned(line[fields[1]]), let inode = Self.unsigned(line[fields[2]]),
                    let size = Self.integer(line[fields[3]]), let modified = Self.integer(line[fields[4]]),
                    let changed = Self.integer(line[fields[5]]), let up = Checksum(hex: UnsafeBufferPointer(rebasing: line[fields[6]]))
                else { continue }
                let downDigits = line[fields[7]]
                let down = Checksum(hex: UnsafeBufferPointer(rebasing: downDigits))
                guard down != nil || downDigits.elementsEqual("-".utf8) else { continue }
                entries[String(decoding: line[fields[0]], as: UTF8.self)] = Entry(
                    identity: Identity(device: device, inode: inode, size: size, modified: modified, changed: changed),
                    up: up, down: down)
            }
        }
    }

    private static func integer(_ digits: Slice<UnsafeBufferPointer<UInt8>>) -> Int64? {
        unsigned(digits).flatMap { Int64(exactly: $0) }
    }

    private static func unsigned(_ digits: Slice<UnsafeBufferPointer<UInt8>>) -> UInt64? {
        guard !digits.isEmpty, digits.count <= 20 else { return nil }
        var value: UInt64 = 0
        for digit in digits {
            guard digit >= UInt8(ascii: "0") && digit <= UInt8(ascii: "9") else { return nil }
            let (times, overflow) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times.addingReportingOverflow(UInt64(digit - UInt8(ascii: "0")))
            guard !overflow && !overflow2 else { return nil }
            value = sum
        }
        return value
    }

    /// The remembered checksums of `name`, if the file is provably unchanged since they were taken.
    func lookup(_ name: String, _ identity: Identity) -> Entry? {
        guard let entry = entries[name], entry.identity == identity, identity.changed < writtenAt - Self.racyWindow
        else { return nil }
        return entry
    }

    /// Writes the entries atomically; a cache that cannot be written is only slower.
    func write(_ fresh: [String: Entry]) {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var text = "\(Self.header) \(Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec))\n"
        for (name, entry) in fresh.sorted(by: { $0.key < $1.key }) where !name.contains("\t") && !name.contains("\n") {
            let id = entry.identity
            text += "\(name)\t\(id.device)\t\(id.inode)\t\(id.size)\t\(id.modified)\t\(id.changed)\t\(entry.up.hex)\t\(entry.down?.hex ?? "-")\n"
        }
        let directory = (file as NSString).deletingLastPathComponent
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try? text.write(toFile: file, atomically: true, encoding: .utf8)
    }
}
