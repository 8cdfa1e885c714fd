import Foundation
import Testing

@testable import Freshet
import FreshetServer

/// `freshet-server` as it runs: the built executable, on 127.0.0.1, against a disposable cluster.
struct RunningServer {
    let process: ProcessRunner.Spawned
    let port: Int
    private let drained = LockedValue([UInt8]())

    /// What the server printed after its first line: read all along, so a server that logs a lot
    /// never blocks on a full pipe.
    var output: String { String(decoding: drained.value, as: UTF8.self) }

    /// The `freshet-server` binary built next to the tests, beside `migrate`.
    static var path: String {
        get throws {
            let migrate = try MigrateBinary.path
            return URL(fileURLWithPath: migrate).deletingLastPathComponent().appendingPathComponent("freshet-server").path
        }
    }

    /// Starts the server on a port the system chooses, and waits until it says it listens.
    init(conninfo: String, arguments: [String] = [], environment: [String: String] = [:]) throws {
        process = try ProcessRunner.start(
            try Self.path, ["serve", "--url", conninfo, "--listen", "127.0.0.1:0"] + arguments, environment: environment)
        var seen = [UInt8]()
        var byte: UInt8 = 0
        let deadline = Date().addingTimeInterval(30)
        // Byte by byte, so nothing after the line is taken from the pipe.
        while Date() < deadline, read(process.outputDescriptor, &byte, 1) == 1 {
            seen.append(byte)
            guard byte == UInt8(ascii: "\n") else { continue }
            let line = String(decoding: seen, as: UTF8.self)
            if let range = line.range(of: "listening on http://127.0.0.1:"), let port = Int(line[range.upperBound...].trimmingCharacters(in: .whitespacesAndNewlines)) {
                self.port = port
                let descriptor = process.outputDescriptor
                let sink = drained
                Thread {
                    var buffer = [UInt8](repeating: 0, count: 65536)
                    while true {
                        let count = Glibc.read(descriptor, &buffer, buffer.count)
                        if count <= 0 { return }
                        sink.mutate { $0 += buffer[0..<count]; if $0.count > 1 << 20 { $0.removeFirst($0.count - (1 << 20)) } }
                    }
                }.start()
                return
            }
            seen.removeAll()
        }
        kill(process.pid, SIGKILL)
        throw MigrateError.cluster("freshet-server did not start: \(String(decoding: seen, as: UTF8.self))")
    }

    /// One HTTP/1.1 GET over a fresh connection: the status code, the head's header lines and the body.
    func get(_ path: String, headers: [String] = []) throws -> (status: Int, head: String, body: String) {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(socket) }
        // A request the server never answers fails the test instead of hanging it.
        var limit = timeval(tv_sec: 20, tv_usec: 0)
        setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw MigrateError.cluster("cannot connect to freshet-server on port \(port)") }
        let extra = headers.map { $0 + "\r\n" }.joined()
        let request = Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n\(headers.isEmpty ? "Connection: close\r\n" : extra)\r\n".utf8)
        _ = request.withUnsafeBytes { send(socket, $0.baseAddress, $0.count, 0) }
        var response = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = recv(socket, &buffer, buffer.count, 0)
            if count <= 0 { break }
            response += buffer[0..<count]
            // A refused upgrade keeps the connection: its answer is the head and a short body.
            if !headers.isEmpty, String(decoding: response, as: UTF8.self).contains("\r\n\r\n") { break }
        }
        let text = String(decoding: response, as: UTF8.self)
        let status = Int(text.split(separator: " ", maxSplits: 2).dropFirst().first ?? "") ?? -1
        let split = text.range(of: "\r\n\r\n")
        return (status, split.map { String(text[..<$0.lowerBound]) } ?? text, split.map { String(text[$0.upperBound...]) } ?? "")
    }

    /// Sends SIGTERM and waits: the exit status, and how long the shutdown took. A server still
    /// running after 20 s gets SIGKILL, so a shutdown that hangs fails the test instead of hanging it.
    func terminate() -> (status: Int32, seconds: Double) {
        let started = Date()
        kill(process.pid, SIGTERM)
        let pid = process.pid
        let killer = DispatchWorkItem { kill(pid, SIGKILL) }
        DispatchQueue.global().asyncAfter(deadline: .now() + 20, execute: killer)
        let outcome = process.wait()
        killer.cancel()
        return (outcome.status, Date().timeIntervalSince(started))
    }
}

@Suite struct ServerTests {
    @Test func eightInsertersOrdersAreProcessedOnceByTheServerWithBalancesConserved() throws {
        let database = try BundleDatabase.fresh()
        try database.connect().execute(JobsTests.orderBook)
        let valueQuery = JobsTests.bookValue
        let valueBefore = try database.scalar(valueQuery)
        let server = try RunningServer(conninfo: database.conninfo, arguments: ["--order-processors", "2"])
        let conninfo = database.conninfo
        let perInserter = 500
        let inserters = (0..<8).map { inserter in
            BackgroundWork {
                let connection = try PGConnection(conninfo: conninfo)
                for batch in stride(from: 0, to: perInserter, by: 50) {
                    try connection.execute(
                        """
                        INSERT INTO jobs.order_queue (user_id, ticker, order_type, amount)
                        SELECT md5('user' || (1 + ((n + \(inserter * perInserter)) * 7919) % 300))::uuid,
                               CASE WHEN n % 97 = 0 THEN 'NOPE' ELSE 'T' || (1 + (n * 31) % 20) END,
                               CASE WHEN n % 3 = 0 THEN 'sell' ELSE 'buy' END, 1 + (n * 13) % 400
                        FROM generate_series(\(batch), \(batch + 49)) n
                        """)
                }
            }
        }
        for inserter in inserters { try inserter.join() }
        #expect(eventually(timeout: 60) { (try? database.count("SELECT count(*) FROM jobs.order_queue WHERE status = 'pending'")) == 0 },
            "the server drained the queue without pg_cron")
        #expect(try database.count("SELECT count(*) FROM jobs.order_queue") == 8 * perInserter)
        #expect(try database.count("SELECT count(DISTINCT order_id) FROM jobs.trades") == database.count("SELECT count(*) FROM jobs.trades"))
        #expect(try database.count("SELECT count(*) FROM jobs.trades") == database.count("SELECT count(*) FROM jobs.order_queue WHERE status = 'completed'"))
        #expect(try database.scalar(valueQuery) == valueBefore, "balances are conserved")
        let metrics = try server.get("/metrics")
        #expect(metrics.status == 200 && metrics.body.contains("freshet_orders_processed_total \(8 * perInserter)"), "\(metrics.body)")
        let stopped = server.terminate()
        #expect(stopped.status == 0 && stopped.seconds < 5, "SIGTERM: exit \(stopped.status) after \(stopped.seconds) s")
    }

    @Test func aServerKilledMidDrainLeavesNoHalfProcessedOrderAndTheNextOneFinishes() throws {
        let database = try BundleDatabase.fresh()
        try database.connect().execute(JobsTests.orderBook)
        let valueQuery = JobsTests.bookValue
        let valueBefore = try database.scalar(valueQuery)
        let server = try RunningServer(conninfo: database.conninfo, arguments: ["--order-processors", "4"])
        try database.connect().execute(
            """
            INSERT INTO jobs.order_queue (user_id, ticker, order_type, amount)
            SELECT md5('user' || (1 + (n * 7919) % 300))::uuid, 'T' || (1 + (n * 31) % 20),
                   CASE WHEN n % 3 = 0 THEN 'sell' ELSE 'buy' END, 1 + (n * 13) % 400
            FROM generate_series(1, 20000) n
            """)
        #expect(eventually(timeout: 30) { (try? database.count("SELECT count(*) FROM jobs.order_queue WHERE status <> 'pending'")) ?? 0 > 100 })
        kill(server.process.pid, SIGKILL)
        _ = server.process.wait()
        let pending = try database.count("SELECT count(*) FROM jobs.order_queue WHERE status = 'pending'")
        #expect(pending > 0, "the kill came mid-drain")
        #expect(try database.count("SELECT count(*) FROM jobs.trades") == database.count("SELECT count(*) FROM jobs.order_queue WHERE status = 'completed'"),
            "every completed order has its trade, and no pending one has")
        #expect(try database.scalar(valueQuery) == valueBefore, "balances are conserved at the kill")

        let next = try RunningServer(conninfo: database.conninfo)
        #expect(eventually(timeout: 60) { (try? database.count("SELECT count(*) FROM jobs.order_queue WHERE status = 'pending'")) == 0 },
            "the next server drains what was left, without a wake-up")
        #expect(try database.count("SELECT count(DISTINCT order_id) FROM jobs.trades") == database.count("SELECT count(*) FROM jobs.trades"))
        #expect(try database.scalar(valueQuery) == valueBefore)
        #expect(next.terminate().status == 0)
    }

    @Test func healthIs200WhileTheDatabaseAnswersAnd503WhenItIsDownThenProcessorsReconnect() throws {
        let cluster = try PostgresCluster.disposable()
        defer { cluster.stop() }
        try Migrator(
            connection: cluster.connect(database: "freshet"), directory: MigrationDirectory(path: BundleDatabase.migrationsPath),
            reporter: Reporter(verbosity: .quiet) { _ in }, options: MigratorOptions()
        ).up()
        func pgCtl(_ arguments: [String]) throws {
            _ = try ProcessRunner.check(cluster.installation.program("pg_ctl"), ["-D", cluster.dataDirectory] + arguments, asServerUser: true)
        }
        let server = try RunningServer(conninfo: cluster.conninfo(database: "freshet"))
        #expect(eventually(timeout: 10) { (try? server.get("/health").status) == 200 })
        let healthy = try server.get("/health")
        #expect(healthy.body.contains("\"reachable\":true") && healthy.body.contains("\"healthy\":true"), "\(healthy.body)")

        try pgCtl(["-m", "fast", "-w", "stop"])
        let down = try server.get("/health")
        #expect(down.status == 503 && down.body.contains("\"reachable\":false"), "\(down.body)")

        try pgCtl(["-l", cluster.logFile, "-w", "start"])
        #expect(eventually(timeout: 20) { (try? server.get("/health").status) == 200 }, "healthy again once the processors reconnect")
        // Two order processors and the gateway's listener and fan-out connections.
        #expect(try server.get("/metrics").body.contains("freshet_database_reconnects_total 4"))
        let stopped = server.terminate()
        #expect(stopped.status == 0 && stopped.seconds < 5)
    }

    @Test func aDatabaseHostThatNeverAnswersHoldsNeitherHealthNorShutdown() throws {
        let silent = try SilentListener()
        let server = try RunningServer(conninfo: "postgresql://postgres@127.0.0.1:\(silent.port)/freshet")
        let started = Date()
        let health = try server.get("/health")
        #expect(health.status == 503 && health.body.contains("\"reachable\":false"), "\(health.body)")
        #expect(Date().timeIntervalSince(started) < 10, "the health check gave up after its connect timeout")
        let stopped = server.terminate()
        #expect(stopped.status == 0 && stopped.seconds < 5, "SIGTERM while connecting: exit \(stopped.status) after \(stopped.seconds) s")
    }

    @Test func aTokenIsSignedWithTheSecretAndLivesAsLongAsAsked() async throws {
        let secret = "a development secret of 32 bytes+"
        let outcome = try ProcessRunner.run(
            try RunningServer.path, ["token", "--user", "0001", "--service", "--ttl", "2h"], environment: ["FRESHET_JWT_SECRET": secret])
        #expect(outcome.status == 0, "\(outcome.output)")
        let token = try await GatewayToken.verified(outcome.output.trimmingCharacters(in: .whitespacesAndNewlines), secret: secret)
        #expect(token.sub.value == "0001" && token.role == "service")
        #expect(abs(token.exp.value.timeIntervalSinceNow - 7200) < 60)
        await #expect(throws: (any Error).self) {
            _ = try await GatewayToken.verified(outcome.output.trimmingCharacters(in: .whitespacesAndNewlines), secret: String(repeating: "o", count: 32))
        }
        let missing = try ProcessRunner.run(try RunningServer.path, ["token", "--user", "u"], environment: ["FRESHET_JWT_SECRET": ""])
        #expect(missing.status != 0 && missing.output.contains("FRESHET_JWT_SECRET"), "\(missing.output)")
        let badTTL = try ProcessRunner.run(try RunningServer.path, ["token", "--user", "u", "--ttl", "soon"], environment: ["FRESHET_JWT_SECRET": secret])
        #expect(badTTL.status != 0 && badTTL.output.contains("--ttl must be"), "\(badTTL.output)")
        let short = try ProcessRunner.run(try RunningServer.path, ["token", "--user", "u"], environment: ["FRESHET_JWT_SECRET": "short"])
        #expect(short.status != 0 && short.output.contains("at least 32 bytes") && !short.output.contains("crashed"), "\(short.output)")
    }
}

/// A TCP port that accepts connections and never answers: a database host that hangs.
final class SilentListener {
    let socket: Int32
    let port: Int

    init() throws {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.socket = socket
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(socket, 64) == 0 else { throw MigrateError.cluster("cannot listen on 127.0.0.1") }
        var actual = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &actual) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socket, $0, &length) }
        }
        port = Int(UInt16(bigEndian: actual.sin_port))
    }

    deinit { close(socket) }
}
