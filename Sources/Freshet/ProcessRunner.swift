import Foundation

/// Runs helper programs (initdb, pg_ctl, pg_dump), as the `postgres` OS user when we are root.
public enum ProcessRunner {
    /// What a finished program printed and how it exited.
    public struct Outcome: Sendable {
        public var status: Int32
        public var output: String
    }

    /// Whether this process runs as root, which PostgreSQL's server programs refuse.
    public static var isRoot: Bool { geteuid() == 0 }

    /// The OS user the server programs run as.
    public static let serverUser = "postgres"

    /// A started program whose combined output is read when it is waited for.
    public struct Spawned: Sendable {
        public let pid: pid_t
        let outputDescriptor: Int32

        /// Reads the program's output to its end and reaps it.
        public func wait() -> Outcome {
            var output = [UInt8]()
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                let count = read(outputDescriptor, &buffer, buffer.count)
                if count > 0 {
                    output.append(contentsOf: buffer[0..<count])
                } else if count == 0 || errno != EINTR {
                    break
                }
            }
            close(outputDescriptor)
            var status: Int32 = 0
            while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
            let exitStatus = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
            return Outcome(status: exitStatus, output: String(decoding: output, as: UTF8.self))
        }
    }

    /// Runs `executable` and waits, capturing standard output and error together.
    @discardableResult
    public static func run(
        _ executable: String, _ arguments: [String], asServerUser: Bool = false, environment: [String: String] = [:]
    ) throws -> Outcome {
        try start(executable, arguments, asServerUser: asServerUser, environment: environment).wait()
    }

    /// Starts `executable` with standard output and error on one pipe; `environment` adds to ours.
    ///
    /// This uses `posix_spawn` and `waitpid` directly: Foundation's `Process` can miss the exit of a
    /// child whose grandchild daemonises, as `pg_ctl start` does.
    public static func start(
        _ executable: String, _ arguments: [String], asServerUser: Bool = false, environment: [String: String] = [:]
    ) throws -> Spawned {
        let argv =
            asServerUser && isRoot
            ? ["/usr/sbin/runuser", "-u", serverUser, "--", executable] + arguments : [executable] + arguments
        var pipeEnds: [Int32] = [0, 0]
        guard pipe(&pipeEnds) == 0 else {
            throw MigrateError.cluster("cannot create a pipe: \(String(cString: strerror(errno)))")
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, pipeEnds[1], 1)
        posix_spawn_file_actions_adddup2(&actions, pipeEnds[1], 2)
        posix_spawn_file_actions_addclose(&actions, pipeEnds[0])
        posix_spawn_file_actions_addclose(&actions, pipeEnds[1])
        var variables = ProcessInfo.processInfo.environment
        variables.merge(environment) { _, new in new }
        let cArguments = argv.map { strdup($0) } + [nil]
        let cEnvironment = variables.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            cArguments.forEach { free($0) }
            cEnvironment.forEach { free($0) }
        }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, argv[0], &actions, nil, cArguments, cEnvironment)
        close(pipeEnds[1])
        guard spawned == 0 else {
            close(pipeEnds[0])
            throw MigrateError.cluster("cannot run \(argv[0]): \(String(cString: strerror(spawned)))")
        }
        return Spawned(pid: pid, outputDescriptor: pipeEnds[0])
    }

    /// Runs `executable` and throws with its output when it exits non-zero.
    @discardableResult
    public static func check(_ executable: String, _ arguments: [String], asServerUser: Bool = false) throws -> String {
        let outcome = try run(executable, arguments, asServerUser: asServerUser)
        guard outcome.status == 0 else {
            let name = (executable as NSString).lastPathComponent
            throw MigrateError.cluster("\(name) \(arguments.joined(separator: " ")) exited \(outcome.status):\n\(outcome.output)")
        }
        return outcome.output
    }

    /// Starts a detached program that outlives this process, with no terminal and no inherited output.
    static func spawnDetached(_ executable: String, _ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/setsid")
        process.arguments = [executable] + arguments
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
    }
}
