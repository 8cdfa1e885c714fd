import Foundation
import Testing

@testable import Freshet
@testable import FreshetServer

/// A bundle database with a watched table, and a gateway server that connects as a feed service
/// role with no other rights: the way it is deployed.
struct GatewayFixture {
    static let secret = "a gateway test secret of 32 bytes or more"
    let database: TestDatabase
    let serverConninfo: String

    init() throws {
        database = try BundleDatabase.fresh()
        try database.connect().execute(
            """
            DO $$ BEGIN
                IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'gateway_server') THEN
                    CREATE ROLE gateway_server LOGIN IN ROLE freshet_client, freshet_worker;
                END IF;
            END $$;
            CREATE SCHEMA app;
            GRANT USAGE ON SCHEMA app TO gateway_server;
            CREATE TABLE app.trades (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, user_id text NOT NULL, status text NOT NULL, qty int);
            CREATE TABLE app.pairs (a int, b int, note text, PRIMARY KEY (a, b));
            SELECT feed.watch('app.trades', 'user_id');
            SELECT feed.watch('app.pairs');
            SELECT feed.grant_access('gateway_server', NULL);
            """)
        serverConninfo = database.conninfo + " user=gateway_server"
    }

    func server(_ arguments: [String] = []) throws -> RunningServer {
        try RunningServer(conninfo: serverConninfo, arguments: arguments, environment: ["FRESHET_JWT_SECRET": Self.secret])
    }

    static func token(_ user: String, service: Bool = false, lifetime: Duration = .seconds(3600)) async throws -> String {
        try await GatewayToken.mint(user: user, isService: service, lifetime: lifetime, secret: secret)
    }

    static func socket(_ server: RunningServer, _ token: String, reads: Bool = true) -> TestSocket {
        TestSocket(url: "ws://127.0.0.1:\(server.port)/ws/db_subscriptions?access_token=\(token)", reads: reads)
    }

    func execute(_ sql: String) throws { try database.connect().execute(sql) }
}

/// The frames with `type` answering a message.
private func answers(_ messages: [[String: Any]], _ type: String) -> [[String: Any]] {
    messages.filter { $0["type"] as? String == type }
}

@Suite(.serialized) struct GatewayTests {
    @Test func aSubscriberReceivesEachKindOfChangeWithItsFields() async throws {
        let fixture = try GatewayFixture()
        let server = try fixture.server()
        defer { _ = server.terminate() }
        let socket = GatewayFixture.socket(server, try await GatewayFixture.token("0001"))
        socket.send(["type": "subscribe", "table": "app.trades", "filters": ["status": ["open", "pending"]], "client_id": "trade_monitor_001"])
        try #require(await socket.wait { !answers($0, "subscribed").isEmpty },
            "no answer; the connection ended with \(socket.closedWith.map(String.init) ?? "nothing"); the server said: \(server.output.suffix(3000))")
        let subscribed = answers(socket.messages, "subscribed").first ?? [:]
        #expect(subscribed["table"] as? String == "app.trades" && subscribed["client_id"] as? String == "trade_monitor_001")
        #expect((subscribed["cursor"] as? String).flatMap(FeedCursor.init) != nil)

        try fixture.execute("INSERT INTO app.trades (user_id, status, qty) VALUES ('0001', 'open', 5), ('0001', 'closed', 6), ('0002', 'open', 7)")
        try fixture.execute("UPDATE app.trades SET qty = 50 WHERE qty = 5")
        try fixture.execute("UPDATE app.trades SET status = 'closed' WHERE qty = 50")  // leaves the filter: delivered
        try fixture.execute("DELETE FROM app.trades WHERE qty = 50")                    // closed now: not delivered
        try fixture.execute("INSERT INTO app.trades (user_id, status, qty) VALUES ('0001', 'pending', 8)")
        try fixture.execute("TRUNCATE app.trades")
        #expect(await socket.wait { answers($0, "db_change").count >= 5 })
        try await Task.sleep(for: .milliseconds(300))
        let changes = socket.changes
        try #require(changes.map { $0["operation"] as? String ?? "" } == ["INSERT", "UPDATE", "UPDATE", "INSERT", "TRUNCATE"], "\(changes)")
        let insert = changes[0]
        #expect(Set(insert.keys) == ["type", "table", "operation", "user_id", "record_id", "data", "timestamp", "cursor"], "\(insert)")
        #expect(insert["table"] as? String == "app.trades" && insert["user_id"] as? String == "0001")
        #expect((insert["data"] as? [String: Any])?["qty"] as? Int == 5)
        #expect(insert["record_id"] as? Int != nil, "a one-column key is sent as its value")
        #expect(ISO8601DateFormatter.withFractionalSeconds.date(from: insert["timestamp"] as? String ?? "") != nil)
        #expect((changes[1]["old"] as? [String: Any])?["qty"] as? Int == 5, "an UPDATE carries the old values of what it changed")
        #expect((changes[2]["old"] as? [String: Any])?["status"] as? String == "open")
        let cursors = changes.compactMap { ($0["cursor"] as? String).flatMap(FeedCursor.init) }
        #expect(cursors.count == 5 && cursors == cursors.sorted() && Set(cursors).count == 5, "in commit order, once each")

        socket.send(["type": "ping"])
        #expect(await socket.wait { !answers($0, "pong").isEmpty })
        socket.send(["type": "unsubscribe", "table": "app.trades", "client_id": "trade_monitor_001"])
        #expect(await socket.wait { !answers($0, "unsubscribed").isEmpty })
        try fixture.execute("INSERT INTO app.trades (user_id, status, qty) VALUES ('0001', 'open', 9)")
        try await Task.sleep(for: .milliseconds(500))
        #expect(socket.changes.count == 5, "nothing after unsubscribing")
        await socket.close()
    }

    @Test func aCompositeKeyIsSentAsAnObject() async throws {
        let fixture = try GatewayFixture()
        let server = try fixture.server()
        defer { _ = server.terminate() }
        let socket = GatewayFixture.socket(server, try await GatewayFixture.token("ops", service: true))
        socket.send(["type": "subscribe", "table": "app.pairs", "client_id": "pairs"])
        #expect(await socket.wait { !answers($0, "subscribed").isEmpty })
        try fixture.execute("INSERT INTO app.pairs VALUES (1, 2, 'x')")
        #expect(await socket.wait { !$0.filter { $0["type"] as? String == "db_change" }.isEmpty })
        let key = socket.changes.first?["record_id"] as? [String: Any]
        #expect(key?["a"] as? Int == 1 && key?["b"] as? Int == 2, "\(socket.changes)")
        await socket.close()
    }

    @Test func aUserNeverReceivesAnotherUsersRowsAndAServiceSeesBoth() async throws {
        let fixture = try GatewayFixture()
        let server = try fixture.server()
        defer { _ = server.terminate() }
        let alice = GatewayFixture.socket(server, try await GatewayFixture.token("alice"))
        let service = GatewayFixture.socket(server, try await GatewayFixture.token("supervisor", service: true))
        // Alice asks for bob's rows in every way a hand-written message can.
        alice.send(["type": "subscribe", "table": "app.trades", "filters": ["user_id": "bob"], "client_id": "sneaky"])
        alice.send(["type": "subscribe", "table": "app.trades", "client_id": "plain"])
        service.send(["type": "subscribe", "table": "app.trades", "client_id": "all"])
        #expect(await alice.wait { answers($0, "subscribed").count + answers($0, "error").count == 2 })
        #expect(await service.wait { !answers($0, "subscribed").isEmpty })
        try fixture.execute("INSERT INTO app.trades (user_id, status) VALUES ('bob', 'open'), ('alice', 'open'), ('bob', 'closed')")
        #expect(await service.wait { answers($0, "db_change").count == 3 })
        #expect(await alice.wait { answers($0, "db_change").count >= 1 })
        try await Task.sleep(for: .milliseconds(300))
        #expect(alice.changes.allSatisfy { $0["user_id"] as? String == "alice" }, "\(alice.changes)")
        #expect(alice.changes.count == 1)
        #expect(Set(service.changes.compactMap { $0["user_id"] as? String }) == ["alice", "bob"])
        await alice.close()
        await service.close()
    }

    @Test func missingBadAndExpiredTokensAreRefusedBeforeTheUpgrade() async throws {
        let fixture = try GatewayFixture()
        let server = try fixture.server()
        defer { _ = server.terminate() }
        let expired = try await GatewayFixture.token("alice", lifetime: .seconds(1))
        try await Task.sleep(for: .seconds(2))
        let forged = try await GatewayToken.mint(user: "alice", isService: true, lifetime: .seconds(60), secret: String(repeating: "x", count: 40))
        for query in ["", "?access_token=", "?access_token=not.a.token", "?access_token=\(expired)", "?access_token=\(forged)"] {
            // A refused upgrade is answered 401 with a Bearer challenge; the same request without
            // the upgrade headers shows the reason too.
            let upgrade = try server.get("/ws/db_subscriptions\(query)", headers: ["Upgrade: websocket", "Connection: Upgrade",
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13"])
            #expect(upgrade.status == 401 && upgrade.head.lowercased().contains("www-authenticate: bearer"), "\(query): \(upgrade.head)")
            let plain = try server.get("/ws/db_subscriptions\(query)")
            #expect(plain.status == 401 && plain.body.contains("a valid gateway token is required"), "\(query): \(plain)")
            let socket = TestSocket(url: "ws://127.0.0.1:\(server.port)/ws/db_subscriptions\(query)")
            #expect(await socket.wait { _ in socket.closedWith != nil })
            #expect(socket.closedWith == -1 && socket.messages.isEmpty, "a WebSocket client cannot connect with \(query)")
        }
        let good = try await GatewayFixture.token("alice")
        let accepted = try server.get("/ws/db_subscriptions?access_token=\(good)", headers: ["Upgrade: websocket", "Connection: Upgrade",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13"])
        #expect(accepted.status == 101, "a valid token is upgraded: \(accepted.status)")
        let bearer = TestSocket(
            url: "ws://127.0.0.1:\(server.port)/ws/db_subscriptions", headers: ["Authorization": "Bearer \(try await GatewayFixture.token("alice"))"])
        bearer.send(["type": "ping"])
        #expect(await bearer.wait { !answers($0, "pong").isEmpty }, "a bearer header is accepted too")
        await bearer.close()
    }

    @Test func aServerWhoseRoleHasNoGrantsAnswers42501AndBacksOff() async throws {
        let fixture = try GatewayFixture()
        try fixture.execute("DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'gateway_nobody') THEN CREATE ROLE gateway_nobody LOGIN; END IF; END $$")
        let server = try RunningServer(
            conninfo: fixture.database.conninfo + " user=gateway_nobody", environment: ["FRESHET_JWT_SECRET": GatewayFixture.secret])
        defer { _ = server.terminate() }
        let socket = GatewayFixture.socket(server, try await GatewayFixture.token("0001"))
        socket.send(["type": "subscribe", "table": "app.trades", "client_id": "m"])
        #expect(await socket.wait { answers($0, "error").contains { $0["code"] as? String == "42501" } }, "\(socket.messages)")
        #expect(try server.get("/health").status == 503)
        try await Task.sleep(for: .seconds(3))
        // Each connection succeeds and its first query fails: the backoff still doubles (0.1, 0.2,
        // 0.4, 0.8, 1.6 s), where restarting it on every connect would retry ten times a second.
        let retries = server.output.components(separatedBy: "gateway fan-out: ERROR 42501").count - 1
        #expect(retries >= 2 && retries <= 8, "\(retries) retries in about 3 s")
        await socket.close()
    }

    @Test func badMessagesGetAnErrorAndTheConnectionStaysUsable() async throws {
        let fixture = try GatewayFixture()
        let server = try fixture.server(["--max-message-bytes", "4096"])
        defer { _ = server.terminate() }
        let socket = GatewayFixture.socket(server, try await GatewayFixture.token("alice"))
        let cases: [(String, String)] = [
            ("{not json", "bad_json"),
            (#"{"type":"teleport"}"#, "unknown_type"),
            (#"{"type":"subscribe","client_id":"x"}"#, "missing_field"),
            (#"{"type":"subscribe","table":"app.nope","client_id":"x"}"#, "42P01"),
            (#"{"type":"subscribe","table":"app.trades","client_id":"x","filters":{"status":{"like":"o%"}}}"#, "22023"),
            (#"{"type":"subscribe","table":"app.trades","client_id":"x","filters":{"colour":"red"}}"#, "42703"),
            (#"{"type":"subscribe","table":"app.trades","client_id":"x","cursor":"soon"}"#, "bad_cursor"),
            (#"{"type":"subscribe","table":"app.trades","client_id":"x","cursor":"999999/1"}"#, "22023"),
            (#"{"type":"ack"}"#, "missing_field"),
        ]
        for (index, (message, code)) in cases.enumerated() {
            socket.send(raw: message)
            #expect(await socket.wait { answers($0, "error").count == index + 1 }, "\(message) got no error")
            let error = answers(socket.messages, "error").last ?? [:]
            #expect(error["code"] as? String == code, "\(message): \(error)")
            #expect(!(error["message"] as? String ?? "").isEmpty && error["ref"] != nil)
        }
        socket.send(["type": "ping"])
        #expect(await socket.wait { !answers($0, "pong").isEmpty }, "still usable after every bad message")
        socket.send(raw: #"{"type":"ping","pad":""# + String(repeating: "x", count: 8192) + #""}"#)
        #expect(await socket.wait { _ in socket.closedWith != nil })
        #expect(socket.closedWith == 1009, "an oversized frame closes with 1009, got \(socket.closedWith.map(String.init) ?? "nothing")")
    }

    @Test func aClientThatNeverReadsIsDroppedWith4008AndTheOthersKeepReceiving() async throws {
        let fixture = try GatewayFixture()
        let server = try fixture.server(["--client-queue", "20"])
        defer { _ = server.terminate() }
        let token = try await GatewayFixture.token("ops", service: true)
        let slow = GatewayFixture.socket(server, token, reads: false)
        let steady = GatewayFixture.socket(server, token)
        slow.send(["type": "subscribe", "table": "app.trades", "client_id": "slow"])
        steady.send(["type": "subscribe", "table": "app.trades", "client_id": "steady"])
        #expect(await steady.wait { !answers($0, "subscribed").isEmpty })
        try await Task.sleep(for: .milliseconds(300))
        // Rows big enough to fill the socket buffers, then the slow client's queue.
        for _ in 0..<50 {
            try fixture.execute("INSERT INTO app.trades (user_id, status) SELECT 'u', repeat('x', 20000) FROM generate_series(1, 10)")
        }
        #expect(await steady.wait(timeout: 30) { answers($0, "db_change").count == 500 }, "the steady client got every change")
        #expect(await waitUntil(timeout: 10) { (try? server.get("/metrics").body.contains("freshet_gateway_clients_dropped_slow_total 1")) == true })
        slow.startReading()
        #expect(await slow.wait(timeout: 15) { _ in slow.closedWith != nil })
        #expect(slow.closedWith == 4008, "closed with \(slow.closedWith.map(String.init) ?? "nothing")")
        await steady.close()
    }

    @Test func deadClientsAreDroppedByHeartbeatAndTheirSubscriptionsTurnInactive() async throws {
        let fixture = try GatewayFixture()
        let server = try fixture.server(["--ping-interval", "1s"])
        defer { _ = server.terminate() }
        let token = try await GatewayFixture.token("ops", service: true)
        let dead = GatewayFixture.socket(server, token, reads: false)
        let alive = GatewayFixture.socket(server, token)
        dead.send(["type": "subscribe", "table": "app.trades", "client_id": "dead"])
        alive.send(["type": "subscribe", "table": "app.trades", "client_id": "alive"])
        #expect(await alive.wait { !answers($0, "subscribed").isEmpty })
        let activity = "SELECT count(*) FILTER (WHERE is_active) || ' of ' || count(*) FROM feed.subscriptions WHERE owner = 'gateway_server'"
        #expect(await waitUntil(timeout: 5) { (try? fixture.database.scalar(activity)) == "2 of 2" })
        #expect(await waitUntil(timeout: 15) { (try? fixture.database.scalar(activity)) == "1 of 2" },
            "the client that answers no ping is dropped and its subscription marked inactive; the other stays")
        #expect(try server.get("/health").body.contains(#""clients":1"#))
        try fixture.execute("INSERT INTO app.trades (user_id, status) VALUES ('u', 'open')")
        #expect(await alive.wait { answers($0, "db_change").count == 1 })
        await alive.close()
        await dead.close()
    }

    @Test func sigtermClosesClientsAndExitsWithinFiveSeconds() async throws {
        let fixture = try GatewayFixture()
        let server = try fixture.server()
        let token = try await GatewayFixture.token("u1")
        let sockets = (0..<3).map { _ in GatewayFixture.socket(server, token) }
        for (index, socket) in sockets.enumerated() { socket.send(["type": "subscribe", "table": "app.trades", "client_id": "c\(index)"]) }
        for socket in sockets { #expect(await socket.wait { !answers($0, "subscribed").isEmpty }) }
        let stopped = server.terminate()
        #expect(stopped.status == 0 && stopped.seconds < 5, "SIGTERM with clients: exit \(stopped.status) after \(stopped.seconds) s")
        for socket in sockets {
            #expect(await socket.wait { _ in socket.closedWith != nil })
            #expect(socket.closedWith == 1000, "a close frame, not a dropped connection: got \(socket.closedWith.map(String.init) ?? "nothing")")
        }
    }

    @Test func aThousandClientsEachReceiveExactlyTheirChanges() async throws {
        let fixture = try GatewayFixture()
        let server = try fixture.server()
        defer { _ = server.terminate() }
        // 20 users, each with 40 clients on their own trades filtered by one of 10 statuses, and
        // 200 service clients filtered by status alone.
        var sockets: [(socket: TestSocket, user: String?, status: String)] = []
        for index in 0..<1000 {
            let service = index >= 800
            let user = service ? nil : "u\(index % 20)"
            let token = try await GatewayFixture.token(user ?? "svc", service: service)
            let status = "s\(index % 10)"
            let socket = GatewayFixture.socket(server, token)
            socket.send(["type": "subscribe", "table": "app.trades", "client_id": "c\(index)", "filters": ["status": status]])
            sockets.append((socket, user, status))
        }
        for entry in sockets { #expect(await entry.socket.wait(timeout: 60) { !answers($0, "subscribed").isEmpty }) }
        try fixture.execute(
            """
            INSERT INTO app.trades (user_id, status, qty)
            SELECT 'u' || u, 's' || s, r FROM generate_series(0, 19) u, generate_series(0, 9) s, generate_series(1, 2) r
            """)
        // Two rows for each user and status, 40 for each status.
        for entry in sockets {
            let expected = entry.user == nil ? 40 : 2
            #expect(await entry.socket.wait(timeout: 60) { answers($0, "db_change").count >= expected })
        }
        try await Task.sleep(for: .milliseconds(500))
        var wrong = 0
        for entry in sockets {
            let changes = entry.socket.changes
            let expected = entry.user == nil ? 40 : 2
            let fits = changes.allSatisfy { change in
                let data = change["data"] as? [String: Any]
                return data?["status"] as? String == entry.status && (entry.user == nil || change["user_id"] as? String == entry.user)
            }
            if changes.count != expected || !fits { wrong += 1 }
        }
        #expect(wrong == 0, "\(wrong) of 1000 clients received other than exactly their changes")
        #expect(try server.get("/metrics").body.contains("freshet_gateway_clients 1000"))
        for entry in sockets { await entry.socket.close() }
    }

    @Test func resumingFromTheLastCursorGivesEveryChangeOnceThroughDisconnectsKillsAndARestart() async throws {
        let fixture = try GatewayFixture()
        var server = try fixture.server()
        let head = try #require(try fixture.database.scalar("SELECT feed.current_cursor()"))
        let port = LockedValue(server.port)
        // Four clients: two services (one filtered), two users (one filtered with IN).
        struct Subscriber: Sendable {
            var user: String
            var service: Bool
            var filters: String
            var wants: @Sendable (_ user: String, _ statuses: [String]) -> Bool
        }
        let subscribers = [
            Subscriber(user: "svc-all", service: true, filters: "{}") { _, _ in true },
            Subscriber(user: "u1", service: false, filters: "{}") { user, _ in user == "u1" },
            Subscriber(user: "u2", service: false, filters: #"{"status": ["open", "pending"]}"#) { user, statuses in
                user == "u2" && !Set(statuses).isDisjoint(with: ["open", "pending"])
            },
            Subscriber(user: "svc-open", service: true, filters: #"{"status": "open"}"#) { _, statuses in statuses.contains("open") },
        ]
        let stop = LockedValue(false)
        let received = (0..<4).map { _ in LockedValue([String]()) }
        var clients: [Task<Int, Never>] = []
        for (index, subscriber) in subscribers.enumerated() {
            let token = try await GatewayFixture.token(subscriber.user, service: subscriber.service)
            let mine = received[index]
            clients.append(Task {
                var rounds = 0
                while true {
                    let done = stop.value
                    let socket = TestSocket(url: "ws://127.0.0.1:\(port.value)/ws/db_subscriptions?access_token=\(token)")
                    let cursor = mine.value.last ?? head
                    socket.send(raw: #"{"type": "subscribe", "table": "app.trades", "client_id": "c\#(index)", "filters": \#(subscriber.filters), "cursor": "\#(cursor)"}"#)
                    try? await Task.sleep(for: .milliseconds(done ? 3000 : Int.random(in: 100...900)))
                    await socket.close()
                    // What the client processed before it went away; a later resume starts after it.
                    let got = socket.changes.compactMap { $0["cursor"] as? String }
                    mine.mutate { $0 += got }
                    rounds += 1
                    if done { return rounds }
                }
            })
        }
        // Eight writers: held transactions, rollbacks, and the same rows updated again and again.
        // Each writer touches only its own rows, so writers never deadlock one another.
        let conninfo = fixture.database.conninfo
        let writers = (0..<8).map { writer in
            BackgroundWork {
                let connection = try PGConnection(conninfo: conninfo)
                var mine: [String] = []
                for step in 0..<60 {
                    let user = ["u1", "u2", "u3"][(writer + step) % 3]
                    let status = ["open", "pending", "closed"][(writer * 7 + step) % 3]
                    try connection.execute("BEGIN")
                    let id = try connection.scalar("INSERT INTO app.trades (user_id, status, qty) VALUES ('\(user)', '\(status)', \(step)) RETURNING id")!
                    let recent = (mine.suffix(3) + [id]).joined(separator: ",")
                    try connection.execute("UPDATE app.trades SET status = '\(status)', qty = qty + 1 WHERE id IN (\(recent))")
                    if step % 9 == 0 { usleep(150_000) }  // held open across other commits
                    let rolledBack = step % 7 == 3
                    try connection.execute(rolledBack ? "ROLLBACK" : "COMMIT")
                    if !rolledBack { mine.append(id) }
                    if step % 11 == 5, let oldest = mine.first {
                        try connection.execute("DELETE FROM app.trades WHERE id = \(oldest)")
                        mine.removeFirst()
                    }
                    usleep(20_000)
                }
            }
        }
        try await Task.sleep(for: .seconds(2))
        // The server's database connections are killed, then the server itself is restarted.
        try fixture.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'gateway_server'")
        try await Task.sleep(for: .seconds(2))
        kill(server.process.pid, SIGKILL)
        _ = server.process.wait()
        server = try fixture.server()
        port.mutate { $0 = server.port }
        for writer in writers { try writer.join() }
        try await Task.sleep(for: .seconds(1))
        stop.mutate { $0 = true }
        var rounds: [Int] = []
        for client in clients { rounds.append(await client.value) }

        let log = try fixture.database.connect().query(
            """
            SELECT change_cursor, user_id, coalesce(row_data ->> 'status', ''), coalesce(old_data ->> 'status', '')
            FROM feed.changes_since($1, 100000, 'app.trades')
            """, [head]).rows
        #expect(log.count > 300, "the writers made a long log (\(log.count) changes)")
        for (index, subscriber) in subscribers.enumerated() {
            let expected = log.filter { row in subscriber.wants(row[1] ?? "", [row[2] ?? "", row[3] ?? ""].filter { !$0.isEmpty }) }.map { $0[0]! }
            let got = received[index].value
            #expect(got == expected, "\(subscriber.user): \(got.count) received, \(expected.count) in the log, \(rounds[index]) connections")
        }
        #expect(rounds.allSatisfy { $0 >= 4 }, "each client resumed several times: \(rounds)")
        _ = server.terminate()
    }
}

/// `eventually` for async tests: it sleeps without holding one of Swift's few cooperative threads,
/// which the WebSocket clients need.
func waitUntil(timeout: Double, _ condition: () throws -> Bool) async rethrows -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if try condition() { return true }
        try? await Task.sleep(for: .milliseconds(50))
    }
    return try condition()
}

/// A value shared between tasks and threads.
final class LockedValue<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Value
    init(_ value: Value) { stored = value }
    var value: Value { lock.withLock { stored } }
    func mutate(_ change: (inout Value) -> Void) { lock.withLock { change(&stored) } }
}

