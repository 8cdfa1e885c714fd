import Foundation

/// The migrations found in one directory, validated and sorted by version.
public struct MigrationDirectory: Sendable {
    public let path: String
    public let migrations: [Migration]
    /// The modules, one per folder, in the order their first migrations run; empty for a flat directory.
    public let modules: [String]
    /// What each migration needs from other modules, by the requiring migration's version, from
    /// each module's `requires` file.
    public let requirements: [Int64: [ModuleRequirement]]
    /// False for a checksums-only listing, whose scripts carry no text and must not run.
    public let hasText: Bool
    /// Held, not used, after loading: `status` exits without spending milliseconds freeing it.
    private let checksumCache: ChecksumCache?

    /// The sum file that records the directory's chained hash.
    public var sumFilePath: String { (path as NSString).appendingPathComponent(SumFile.fileName) }

    /// Reads every `*.sql` file in `path` (golang-migrate pairs and dbmate files), refusing malformed names,
    /// duplicate versions and orphan down files, all at once.
    ///
    /// - Parameter checksumsOnly: for `status`: take checksums of unchanged files from the
    ///   ``ChecksumCache`` instead of reading them, and keep no text.
    public init(path: String, checksumsOnly: Bool = false) throws {
        self.path = path
        hasText = !checksumsOnly
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw MigrateError.missingDirectory(path)
        }
        let (names, folders) = try Self.sqlFileNames(in: path)
        var problems: [MigrateError] = []
        var files: [(name: String, parsed: MigrationFileName)] = []
        var malformed: [(name: String, error: MigrateError)] = []
        for fileName in names {
            let baseName = fileName.utf8.lastIndex(of: UInt8(ascii: "/")).map { String(fileName[fileName.utf8.index(after: $0)...]) } ?? fileName
            switch MigrationFileName.parse(baseName) {
            case .failure(let error): malformed.append((fileName, error))
            case .success(let parsed): files.append((fileName, parsed))
            }
        }
        // By version, then by name in byte order: the same in every locale, and the version decides
        // almost every comparison without looking at a string.
        files.sort { $0.parsed.version != $1.parsed.version
            ? $0.parsed.version < $1.parsed.version : $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
        problems += malformed.sorted { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }.map(\.error)
        let directoryPath = path.hasSuffix("/") ? path : path + "/"
        var cache = checksumsOnly ? ChecksumCache(directory: path) : nil
        let loaded: [Swift.Result<Scripts, MigrateError>]
        if cache != nil {
            let directoryDescriptor = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            defer { if directoryDescriptor >= 0 { close(directoryDescriptor) } }
            var outcomes: [Swift.Result<Scripts, MigrateError>] = []
            outcomes.reserveCapacity(files.count)
            var fresh: [(name: String, entry: ChecksumCache.Entry)] = []
            fresh.reserveCapacity(files.count)
            var missed = false
            // The stats cost more than the rest of the loop: half of them go to the helper thread.
            var identities = [ChecksumCache.Identity?](repeating: nil, count: files.count)
            identities.withUnsafeMutableBufferPointer { buffer in
                // Each half writes only its own indices.
                nonisolated(unsafe) let output = buffer
                let names = files.map(\.name)
                WorkerThread.helper.splitInTwo(names.count) { range in
                    for index in range { output[index] = ChecksumCache.Identity(directory: directoryDescriptor, name: names[index]) }
                }
            }
            for (index, file) in files.enumerated() {
                guard let identity = identities[index] else {
                    outcomes.append(Self.load(directoryPath + file.name, file.name, file.parsed))
                    missed = true
                    continue
                }
                if let entry = cache?.lookup(file.name, at: index, identity) {
                    outcomes.append(.success(Self.scripts(from: entry, file.name, file.parsed)))
                    fresh.append((file.name, entry))
                    continue
                }
                missed = true
                let outcome = Self.load(directoryPath + file.name, file.name, file.parsed)
                outcomes.append(outcome)
                if case .success(let scripts) = outcome {
                    fresh.append((file.name, ChecksumCache.Entry(identity: identity, up: scripts.0.checksum, down: scripts.1?.checksum)))
                }
            }
            if missed { cache?.write(fresh) }
            loaded = outcomes
        } else {
            loaded = Self.concurrentMap(files) { Self.load(directoryPath + $0.name, $0.name, $0.parsed) }
        }
        checksumCache = cache
        // Files come sorted by version, so each version's scripts are neighbours: pairing them is
        // one walk, with no dictionary of thousands of scripts. As in golang-migrate, up and down
        // pair by version alone: their names may differ.
        var migrations: [Migration] = []
        migrations.reserveCapacity(files.count)
        var orphans: [MigrateError] = []
        var version: Int64?
        var up: MigrationScript?
        var down: MigrationScript?
        func finishVersion() {
            guard let version else { return }
            if let up {
                migrations.append(Migration(version: version, name: up.name, up: up, down: down))
            } else if let down {
                orphans.append(.orphanDownFile(down.fileName))
            }
        }
        func add(_ script: MigrationScript, from fileName: String) {
            if script.version != version {
                finishVersion()
                (version, up, down) = (script.version, nil, nil)
            }
            if let other = script.direction == .up ? up : down {
                problems.append(.duplicateVersion(script.version, files: [other.fileName, fileName]))
            }
            if script.direction == .up { up = script } else { down = script }
        }
        for (file, outcome) in zip(files, loaded) {
            switch outcome {
            case .failure(let error):
                if case .unreadableFile = error { throw error }
                problems.append(error)
            case .success(let scripts):
                add(scripts.0, from: file.name)
                if let second = scripts.1 { add(second, from: file.name) }
            }
        }
        finishVersion()
        problems += orphans
        try MigrateError.throwIfAny(problems)
        self.migrations = migrations
        modules = folders.sorted { first, second in
            let firstVersion = migrations.first { $0.module == first }?.version ?? .max
            let secondVersion = migrations.first { $0.module == second }?.version ?? .max
            return firstVersion != secondVersion ? firstVersion < secondVersion : first < second
        }
        var requirements: [Int64: [ModuleRequirement]] = [:]
        for module in folders {
            let file = "\(path)/\(module)/\(ModuleRequirement.fileName)"
            guard let bytes = Self.readFile(file) else { continue }
            switch ModuleRequirement.parse(String(decoding: bytes, as: UTF8.self), module: module, in: migrations) {
            case .success(let parsed): requirements.merge(parsed) { $0 + $1 }
            case .failure(let error): problems += error.flattened
            }
        }
        try MigrateError.throwIfAny(problems)
        self.requirements = requirements
    }

    /// A file's script, or a dbmate file's up and optional down: a pair, since an array per file
    /// would cost an allocation.
    private typealias Scripts = (MigrationScript, MigrationScript?)

    /// Reads, normalises and hashes one file: its script, or a dbmate file's two.
    private static func load(_ path: String, _ fileName: String, _ parsed: MigrationFileName)
        -> Swift.Result<Scripts, MigrateError>
    {
        guard let bytes = readFile(path) else { return .failure(.unreadableFile(path)) }
        let text = Checksum.normalize(bytes)
        guard let direction = parsed.direction else {
            guard DbmateFile.containsMarker(text) else {
                return .failure(.malformedFileName(
                    file: fileName, reason: "it must end in .up.sql or .down.sql, or hold dbmate's `-- migrate:up` section"))
            }
            do {
                let sections = try DbmateFile.sections(of: text, file: fileName)
                return .success((
                    section(sections.up, .up, parsed, path, fileName), sections.down.map { section($0, .down, parsed, path, fileName) }))
            } catch let error as MigrateError {
                return .failure(error)
            } catch {
                return .failure(.unreadableFile(path))
            }
        }
        return .success((MigrationScript(
            version: parsed.version, name: parsed.name, direction: direction, path: path, sql: text, fileName: fileName), nil))
    }

    /// The `.sql` files of a flat directory, or of every module folder as `<module>/<file>` when the
    /// directory holds folders and no `.sql` file of its own; and those folders.
    private static func sqlFileNames(in path: String) throws -> (names: [String], modules: [String]) {
        let (files, folders) = try entries(in: path)
        guard files.isEmpty else { return (files, []) }
        var names: [String] = []
        var modules: [String] = []
        var problems: [MigrateError] = []
        for folder in folders.sorted() {
            let inside = try entries(in: "\(path)/\(folder)").files
            guard !inside.isEmpty else { continue }
            guard ModuleRequirement.isValidModuleName(folder) else {
                problems.append(.malformedFileName(
                    file: folder + "/", reason: "a module folder's name must be lowercase letters, digits and _, starting with a letter"))
                continue
            }
            modules.append(folder)
            names += inside.map { "\(folder)/\($0)" }
        }
        try MigrateError.throwIfAny(problems)
        return (names, modules)
    }

    /// The `.sql` files and the folders directly in `path`, from readdir: FileManager's listing
    /// costs milliseconds per thousand files.
    private static func entries(in path: String) throws -> (files: [String], folders: [String]) {
        guard let stream = opendir(path) else { throw MigrateError.unreadableFile(path) }
        defer { closedir(stream) }
        var files: [String] = []
        var folders: [String] = []
        let suffix = Array(".sql".utf8)
        while let entry = readdir(stream) {
            let type = entry.pointee.d_type
            withUnsafeBytes(of: entry.pointee.d_name) { raw in
                let bytes = UnsafeRawBufferPointer(rebasing: raw[..<(raw.firstIndex(of: 0) ?? raw.count)])
                if bytes.count > suffix.count && bytes.suffix(suffix.count).elementsEqual(suffix) {
                    files.append(String(decoding: bytes, as: UTF8.self))
                } else if bytes.first != UInt8(ascii: "."), type == DT_DIR || type == DT_UNKNOWN {
                    let name = String(decoding: bytes, as: UTF8.self)
                    var info = stat()
                    if type == DT_DIR || (stat("\(path)/\(name)", &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR) {
                        folders.append(name)
                    }
                }
            }
        }
        return (files, folders)
    }

    /// The scripts a cache entry stands for, with checksums and no text.
    private static func scripts(from entry: ChecksumCache.Entry, _ fileName: String, _ parsed: MigrationFileName) -> Scripts {
        func script(_ direction: MigrationScript.Direction, _ checksum: Checksum) -> MigrationScript {
            MigrationScript(
                version: parsed.version, name: parsed.name, direction: direction, fileName: fileName,
                checksum: checksum, isSection: parsed.direction == nil)
        }
        guard parsed.direction == nil else { return (script(parsed.direction!, entry.up), nil) }
        return (script(.up, entry.up), entry.down.map { script(.down, $0) })
    }

    /// `transform` over `items` on every core, in order: reading and hashing thousands of files is most of `status`.
    private static func concurrentMap<T: Sendable, U: Sendable>(_ items: [T], _ transform: @Sendable (T) -> U) -> [U] {
        let chunks = min(items.count, ProcessInfo.processInfo.activeProcessorCount * 4)
        guard chunks > 1 else { return items.map(transform) }
        var results = [U?](repeating: nil, count: items.count)
        results.withUnsafeMutableBufferPointer { buffer in
            // Each chunk writes only its own indices.
            nonisolated(unsafe) let output = buffer
            DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
                for index in (chunk * items.count / chunks)..<((chunk + 1) * items.count / chunks) {
                    output[index] = transform(items[index])
                }
            }
        }
        return results.map { $0! }
    }

    /// The file's bytes, sized by fstat: FileManager's Data costs several times more per file, which
    /// `status` over thousands of files feels.
    static func readFile(_ path: String) -> [UInt8]? {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { return nil }
        var bytes = [UInt8](repeating: 0, count: Int(info.st_size))
        var filled = 0
        while true {
            if filled == bytes.count { bytes.append(contentsOf: [UInt8](repeating: 0, count: 4096)) }  // it grew
            let count = bytes.withUnsafeMutableBytes { read(descriptor, $0.baseAddress! + filled, $0.count - filled) }
            if count < 0 { return nil }
            if count == 0 { break }
            filled += count
        }
        bytes.removeSubrange(filled...)
        return bytes
    }

    private static func section(
        _ section: DbmateFile.Section, _ direction: MigrationScript.Direction, _ parsed: MigrationFileName, _ path: String,
        _ fileName: String
    ) -> MigrationScript {
        MigrationScript(
            version: parsed.version, name: parsed.name, direction: direction, path: path, sql: section.sql,
            firstLine: section.firstLine, dbmateNoTransaction: section.noTransaction, fileName: fileName)
    }

    /// The newest version each module's history rows hold; a row written before modules existed
    /// counts for the module whose folder holds its version.
    public func newestVersions(of rows: [HistoryStore.Row]) -> [String: Int64] {
        var newest: [String: Int64] = [:]
        for row in rows {
            let module = migration(version: row.version)?.module ?? row.module
            newest[module] = max(newest[module] ?? .min, row.version)
        }
        return newest
    }

    /// The migration with this version, if a file exists for it.
    public func migration(version: Int64) -> Migration? {
        // A binary search of the sorted migrations: a dictionary of thousands would cost more to build than every lookup.
        var low = 0
        var high = migrations.count
        while low < high {
            let middle = (low + high) / 2
            if migrations[middle].version < version { low = middle + 1 } else { high = middle }
        }
        return low < migrations.count && migrations[low].version == version ? migrations[low] : nil
    }
}
