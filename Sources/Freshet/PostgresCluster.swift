import Foundation

/// A PostgreSQL cluster of our own on a unix socket: disposable for tests, or persistent for development.
///
/// A disposable cluster lives in a private temporary directory with `fsync=off`, and is stopped and
/// removed when it is released, when the process exits, or when the process is killed: a detached
/// watchdog waits for this process to end and then removes whatever is left.
public final class PostgresCluster: @unchecked Sendable {
    public let installation: PostgresInstallation
    /// The directory holding the data directory, the socket and the server log.
    public let rootDirectory: String
    /// The database that pg_cron schedules jobs in.
    public let cronDatabase: String
    public let port = 5432
    public let isDisposable: Bool
    /// The superuser that initdb created.
    public let superuser = "postgres"
    private let lock = NSLock()
    private var databaseCounter = 0
    private var stopped = false

    public var dataDirectory: String { "\(rootDirectory)/data" }
    public var logFile: String { "\(rootDirectory)/server.log" }
    public var hasPgCron: Bool { installation.hasPgCron }

    private init(installation: PostgresInstallation, rootDirectory: String, cronDatabase: String, disposable: Bool) {
        self.installation = installation
        self.rootDirectory = rootDirectory
        self.cronDatabase = cronDatabase
        self.isDisposable = disposable
    }

    /// Creates and starts a throw-away cluster in a new temporary directory.
    public static func disposable(cronDatabase: String = "freshet") throws -> PostgresCluster {
        let installation = try PostgresInstallation.find()
        var template = Array("\(NSTemporaryDirectory())/freshet-pg-XXXXXX".utf8CString)
        guard let created = mkdtemp(&template) else {
            throw MigrateError.cluster("cannot create a temporary directory: \(String(cString: strerror(errno)))")
        }
        let root = String(cString: created)
        let cluster = PostgresCluster(
            installation: installation, rootDirectory: root, cronDatabase: cronDatabase, disposable: true)
        do {
            try cluster.handOverToServerUser(root)
            try cluster.startWatchdog()
            try cluster.initialize(durable: false)
            try cluster.start()
            try cluster.createDatabase(cronDatabase)
        } catch {
            cluster.stop()
            throw error
        }
        return cluster
    }

    /// Opens the development cluster at `path`, creating and starting it as needed. It is never removed.
    ///
    /// - Parameter durable: false creates it with `fsync=off`, for benchmarks and throw-away work.
    public static func persistent(at path: String, cronDatabase: String = "freshet", durable: Bool = true) throws
        -> PostgresCluster
    {
        let installation = try PostgresInstallation.find()
        let root = URL(fileURLWithPath: path).standardizedFileURL.path
        let cluster = PostgresCluster(
            installation: installation, rootDirectory: root, cronDatabase: cronDatabase, disposable: false)
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        try cluster.handOverToServerUser(root)
        if ProcessRunner.isRoot,
            try ProcessRunner.run("/usr/bin/test", ["-w", root], asServerUser: true).status != 0
        {
            throw MigrateError.cluster(
                "the \(ProcessRunner.serverUser) OS user cannot reach \(root); put the cluster in a directory every user can traverse")
        }
        let fresh = !FileManager.default.fileExists(atPath: "\(cluster.dataDirectory)/PG_VERSION")
        if fresh { try cluster.initialize(durable: durable) }
        if !cluster.isRunning {
            if !fresh { try cluster.addMissingSettings() }
            try cluster.start()
        }
        if fresh { try cluster.createDatabase(cronDatabase) }
        return cluster
    }

    /// Stops the development cluster at `path` if it runs; its data stays.
    public static func stopPersistent(at path: String) throws {
        let root = URL(fileURLWithPath: path).standardizedFileURL.path
        let cluster = PostgresCluster(
            installation: try PostgresInstallation.find(), rootDirectory: root, cronDatabase: "", disposable: false)
        cluster.stop()
    }

    deinit {
        if isDisposable { stop() }
    }

    /// Whether the postmaster of this cluster is running.
    public var isRunning: Bool {
        guard FileManager.default.fileExists(atPath: "\(dataDirectory)/postmaster.pid") else { return false }
        let outcome = try? ProcessRunner.run(installation.program("pg_ctl"), ["-D", dataDirectory, "status"], asServerUser: true)
        return outcome?.status == 0
    }

    /// A libpq connection string for `database` over this cluster's socket.
    public func conninfo(database: String) -> String {
        "host=\(rootDirectory) port=\(port) dbname=\(database) user=\(superuser)"
    }

    /// The same target as a `postgresql://` URL, for tools that only take URLs.
    public func url(database: String) -> String {
        let unreserved = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-._~"))
        let socket = rootDirectory.addingPercentEncoding(withAllowedCharacters: unreserved) ?? rootDirectory
        return "postgresql://\(superuser)@/\(database)?host=\(socket)&port=\(port)"
    }

    /// Opens a connection to `database`.
    public func connect(database: String) throws -> PGConnection {
        try PGConnection(conninfo: conninfo(database: database))
    }

    /// Creates a database, optionally as a copy of `template`.
    public func createDatabase(_ name: String, template: String? = nil) throws {
        let admin = try connect(database: "postgres")
        let copy = try template.map { " TEMPLATE \(try quoteIdentifier($0))" } ?? ""
        try admin.execute("CREATE DATABASE \(try quoteIdentifier(name))\(copy)")
    }

    /// Creates a database with a name no other caller of this cluster gets.
    public func createUniqueDatabase(prefix: String = "t", template: String? = nil) throws -> String {
        let name = lock.withLock {
            databaseCounter += 1
            return "\(prefix)_\(getpid())_\(databaseCounter)"
        }
        try createDatabase(name, template: template)
        return name
    }

    /// Drops a database, ending any sessions still connected to it.
    public func dropDatabase(_ name: String) throws {
        let admin = try connect(database: "postgres")
        try admin.execute("DROP DATABASE IF EXISTS \(try quoteIdentifier(name)) WITH (FORCE)")
    }

    /// Stops the server; a disposable cluster's directory is removed as well. Safe to call twice.
    public func stop() {
        let alreadyStopped = lock.withLock {
            defer { stopped = true }
            return stopped
        }
        guard !alreadyStopped else { return }
        if FileManager.default.fileExists(atPath: "\(dataDirectory)/postmaster.pid") {
            _ = try? ProcessRunner.run(
                installation.program("pg_ctl"),
                ["-D", dataDirectory, "-m", isDisposable ? "immediate" : "fast", "-w", "stop"], asServerUser: true)
        }
        if isDisposable { try? FileManager.default.removeItem(atPath: rootDirectory) }
    }

    // MARK: - Setting up

    private func quoteIdentifier(_ name: String) throws -> String {
        "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    private func handOverToServerUser(_ path: String) throws {
        guard ProcessRunner.isRoot else { return }
        guard let account = getpwnam(ProcessRunner.serverUser) else {
            throw MigrateError.cluster(
                "running as root needs the `\(ProcessRunner.serverUser)` OS user to own the server; install postgresql (make deps)")
        }
        guard chown(path, account.pointee.pw_uid, account.pointee.pw_gid) == 0 else {
            throw MigrateError.cluster("cannot hand \(path) to \(ProcessRunner.serverUser): \(String(cString: strerror(errno)))")
        }
        chmod(path, 0o700)
    }

    /// Starts the watchdog that removes this cluster once this process has ended, however it ended.
    ///
    /// It keeps trying for a while: the process may have died in the middle of `initdb` or `pg_ctl
    /// start`, which go on writing into the directory. SIGQUIT is PostgreSQL's immediate shutdown.
    private func startWatchdog() throws {
        let script = """
            trap '' INT TERM HUP
            while kill -0 "$1" 2>/dev/null; do sleep 0.5; done
            for attempt in $(seq 60); do
              pid=$(head -n 1 "$2/postmaster.pid" 2>/dev/null)
              if [ -n "$pid" ] && kill -QUIT "$pid" 2>/dev/null; then
                while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
              fi
              rm -rf "$3" 2>/dev/null
              [ -e "$3" ] || exit 0
              sleep 0.5
            done
            """
        try ProcessRunner.spawnDetached(
            "/bin/sh", ["-c", script, "freshet-watchdog", String(getpid()), dataDirectory, rootDirectory])
    }

    private func initialize(durable: Bool) throws {
        try ProcessRunner.check(
            installation.program("initdb"),
            ["-D", dataDirectory, "-U", superuser, "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"],
            asServerUser: true)
        var settings = [
            "listen_addresses = ''",
            "unix_socket_directories = '\(rootDirectory)'",
            "port = \(port)",
            "max_connections = 200",
            "log_min_messages = warning",
            "log_line_prefix = '%m [%p] %d '",
        ]
        if !durable {
            settings += ["fsync = off", "synchronous_commit = off", "full_page_writes = off"]
        }
        if hasPgCron {
            settings += ["shared_preload_libraries = 'pg_cron'", "cron.database_name = '\(cronDatabase)'"] + cronConnectionSettings
        }
        settings += Self.logicalDecodingSettings
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: "\(dataDirectory)/postgresql.conf"))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(("\n# freshet\n" + settings.joined(separator: "\n") + "\n").utf8))
        try handle.close()
    }

    /// pg_cron runs each job over a libpq connection to `cron.host`, `localhost` by default, which a
    /// cluster without TCP never answers: point it at the socket directory, as a client would.
    private var cronConnectionSettings: [String] { ["cron.host = '\(rootDirectory)'"] }

    /// Logical decoding, for the feed's capture from the WAL: wal2json must be named to be loaded, and
    /// a slot nobody reads may hold back at most 1 GB of WAL before PostgreSQL invalidates it.
    static let logicalDecodingSettings = [
        "wal_level = logical", "max_slot_wal_keep_size = '1GB'", "output_plugin_libraries = 'pgoutput, test_decoding, wal2json'",
    ]

    /// Adds the settings of later Freshet versions to a cluster made before they existed; read at the next start.
    private func addMissingSettings() throws {
        let path = "\(dataDirectory)/postgresql.conf"
        let configuration = try String(contentsOfFile: path, encoding: .utf8)
        var missing: [String] = []
        if hasPgCron, configuration.contains("shared_preload_libraries = 'pg_cron'"), !configuration.contains("cron.host") {
            missing += cronConnectionSettings
        }
        if !configuration.contains("output_plugin_libraries") { missing += Self.logicalDecodingSettings }
        guard !missing.isEmpty else { return }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(("\n# freshet\n" + missing.joined(separator: "\n") + "\n").utf8))
        try handle.close()
    }

    private func start() throws {
        let outcome = try ProcessRunner.run(
            installation.program("pg_ctl"), ["-D", dataDirectory, "-l", logFile, "-w", "-t", "60", "start"],
            asServerUser: true)
        guard outcome.status == 0 else {
            let log = (try? String(contentsOfFile: logFile, encoding: .utf8)) ?? ""
            throw MigrateError.cluster("the server did not start:\n\(outcome.output)\n\(log.suffix(2000))")
        }
    }
}
