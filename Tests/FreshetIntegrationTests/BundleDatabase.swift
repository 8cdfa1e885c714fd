import Foundation

@testable import Freshet

/// Databases with the repository's own migrations applied, cloned from one template per process.
enum BundleDatabase {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var template: TestDatabase?

    /// The repository's `migrations/` directory.
    static var migrationsPath: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("migrations").path
    }

    /// A fresh database with every migration applied.
    static func fresh() throws -> TestDatabase {
        let name = try lock.withLock {
            if let template { return template.name }
            let created = try TestDatabase()
            try Migrator(
                connection: created.connect(), directory: MigrationDirectory(path: migrationsPath),
                reporter: Reporter(verbosity: .quiet) { _ in }, options: MigratorOptions()
            ).up()
            template = created
            return created.name
        }
        return try TestDatabase(template: name)
    }
}

/// Runs `body` on its own thread; `join()` waits for it and rethrows its error.
final class BackgroundWork: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private var failure: Error?

    init(_ body: @escaping @Sendable () throws -> Void) {
        let thread = Thread { [self] in
            do { try body() } catch { failure = error }
            done.signal()
        }
        thread.start()
    }

    func join() throws {
        done.wait()
        if let failure { throw failure }
    }
}
