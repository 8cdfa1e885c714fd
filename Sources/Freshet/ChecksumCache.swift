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
            guard name.withCString({ fstatat(directory, $0, &info, 0) }) == 0 else { return nil }
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

    /// The format's first bytes, then the time the file was written, then one record per file:
    /// a binary layout, since parsing text took longer than the reads the cache saves. The cache
    /// never leaves the machine that wrote it, so words are in the machine's byte order.
    private static let magic = Array("freshet-checksums 2\n".utf8)
    private static let racyWindow: Int64 = 1_000_000_000
    /// Per record after the name's length and bytes: five identity words, the up digest, a
    /// flag for the down digest, and the down digest or zeros.
    private static let fixedRecordSize = 5 * 8 + 32 + 1 + 32

    let file: String
    /// The file's bytes, which `names` point into: a String per entry would cost an allocation each.
    private var bytes: [UInt8] = []
    private var names: [Range<Int>] = []
    private var entries: [Entry] = []
    /// Positions by name, built at the first lookup the file's order does not answer.
    private var positions: [String: Int]?
    private var writtenAt: Int64 = 0

    /// The cache for `directory` under `$XDG_CACHE_HOME/freshet` (or `~/.cache/freshet`); nil without either.
    init?(directory: String) {
        // getenv and realpath: ProcessInfo's environment and URL's standardisation cost milliseconds on first use.
        func variable(_ name: String) -> String? { getenv(name).map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 } }
        guard let root = variable("XDG_CACHE_HOME") ?? variable("HOME").map({ $0 + "/.cache" }),
            let resolved = realpath(directory, nil)
        else { return nil }
        let absolute = String(cString: resolved)
        free(resolved)
        file = "\(root)/freshet/checksums-\(Checksum.hexDigest(Data(absolute.utf8)).prefix(32))"
        guard let bytes = MigrationDirectory.readFile(file), bytes.starts(with: Self.magic) else { return }
        self.bytes = bytes
        var names: [Range<Int>] = []
        var entries: [Entry] = []
        var writtenAt: Int64 = 0
        bytes.withUnsafeBytes { raw in
            var offset = Self.magic.count
            func word() -> UInt64 {
                defer { offset += 8 }
                return raw.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
            }
            func digest() -> Checksum {
                Checksum(words: SIMD4(word(), word(), word(), word()))
            }
            guard raw.count >= offset + 8 else { return }
            writtenAt = Int64(bitPattern: word())
            // A truncated record ends the reading: what came before it still counts.
            while offset + 2 <= raw.count {
                let nameLength = Int(raw.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
                guard offset + 2 + nameLength + Self.fixedRecordSize <= raw.count else { break }
                names.append((offset + 2)..<(offset + 2 + nameLength))
                offset += 2 + nameLength
                let identity = Identity(
                    device: word(), inode: word(), size: Int64(bitPattern: word()), modified: Int64(bitPattern: word()),
                    changed: Int64(bitPattern: word()))
                let up = digest()
                let hasDown = raw[offset] == 1
                offset += 1
                let down = digest()
                entries.append(Entry(identity: identity, up: up, down: hasDown ? down : nil))
            }
        }
        (self.names, self.entries, self.writtenAt) = (names, entries, writtenAt)
    }

    /// How many files the cache remembers.
    var count: Int { entries.count }

    /// The remembered checksums of `name`, if the file is provably unchanged since they were taken.
    ///
    /// - Parameter index: the file's place in the directory's order, which is the cache's order
    ///   too while no file has come or gone: then no name is hashed.
    mutating func lookup(_ name: String, at index: Int, _ identity: Identity) -> Entry? {
        var position = index
        if !(index < names.count && bytes[names[index]].elementsEqual(name.utf8)) {
            if positions == nil {
                positions = Dictionary(names.indices.map { (String(decoding: bytes[names[$0]], as: UTF8.self), $0) }) { first, _ in first }
            }
            guard let found = positions?[name] else { return nil }
            position = found
        }
        let entry = entries[position]
        guard entry.identity == identity, identity.changed < writtenAt - Self.racyWindow else { return nil }
        return entry
    }

    /// Writes the entries atomically, in the directory's order; a cache that cannot be written is only slower.
    func write(_ fresh: [(name: String, entry: Entry)]) {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var bytes = Self.magic
        bytes.reserveCapacity(bytes.count + 8 + fresh.count * (Self.fixedRecordSize + 40))
        func append(_ word: UInt64) { withUnsafeBytes(of: word) { bytes += $0 } }
        func append(_ checksum: Checksum) { for word in [checksum.words.x, checksum.words.y, checksum.words.z, checksum.words.w] { append(word) } }
        append(UInt64(bitPattern: Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)))
        for (name, entry) in fresh where name.utf8.count <= Int(UInt16.max) {
            withUnsafeBytes(of: UInt16(name.utf8.count)) { bytes += $0 }
            bytes += name.utf8
            let id = entry.identity
            for word in [id.device, id.inode, UInt64(bitPattern: id.size), UInt64(bitPattern: id.modified), UInt64(bitPattern: id.changed)] {
                append(word)
            }
            append(entry.up)
            bytes.append(entry.down == nil ? 0 : 1)
            append(entry.down ?? Checksum(words: .zero))
        }
        let directory = (file as NSString).deletingLastPathComponent
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try? Data(bytes).write(to: URL(fileURLWithPath: file), options: .atomic)
    }
}
