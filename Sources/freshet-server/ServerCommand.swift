import ArgumentParser
import Foundation
import Freshet
import FreshetServer
import Logging

@main
struct ServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "freshet-server",
        abstract: "Freshet's live half: the WebSocket gateway, instant order processing, health and metrics beside the database.",
        subcommands: [Serve.self, Token.self],
        defaultSubcommand: Serve.self)
}

/// Where the JWT secret comes from: `--jwt-secret-file`, else `FRESHET_JWT_SECRET`.
struct SecretOptions: ParsableArguments {
    @Option(help: "A file holding the HS256 secret for gateway tokens (default: $FRESHET_JWT_SECRET).")
    var jwtSecretFile: String?

    func secret() throws -> String? {
        let secret: String?
        if let jwtSecretFile {
            guard let text = try? String(contentsOfFile: jwtSecretFile, encoding: .utf8) else {
                throw ValidationError("cannot read the JWT secret file \(jwtSecretFile)")
            }
            secret = text.trimmingCharacters(in: .whitespacesAndNewlines)
        } else {
            secret = ProcessInfo.processInfo.environment["FRESHET_JWT_SECRET"].flatMap { $0.isEmpty ? nil : $0 }
        }
        // HS256 with a key shorter than its 32-byte output is guessable; JWTKit asserts on it.
        if let secret, secret.utf8.count < 32 {
            throw ValidationError("the JWT secret must be at least 32 bytes (it has \(secret.utf8.count)): try `openssl rand -hex 32`")
        }
        return secret
    }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the server until SIGTERM or SIGINT.")

    @Option(help: "Database URL or libpq connection string (default: $DATABASE_URL, then PG* variables).")
    var url: String?

    @Option(help: "Address to listen on, HOST:PORT; port 0 lets the system choose.")
    var listen = "127.0.0.1:8080"

    @Option(help: "Connections that process orders as they are inserted.")
    var orderProcessors = 2

    @Option(help: "The largest message a WebSocket client may send, in bytes; larger closes it with 1009.")
    var maxMessageBytes = 65536

    @Option(help: "Frames a WebSocket client may have waiting before it is closed with 4008.")
    var clientQueue = 4096

    @Option(help: "How often idle WebSocket clients are pinged (90s, 1m); one that misses a ping is dropped.")
    var pingInterval = "30s"

    @OptionGroup var secret: SecretOptions

    func validate() throws {
        guard orderProcessors >= 0 else { throw ValidationError("--order-processors must be 0 or more") }
        guard maxMessageBytes >= 1024 else { throw ValidationError("--max-message-bytes must be at least 1024") }
        guard clientQueue >= 1 else { throw ValidationError("--client-queue must be at least 1") }
        _ = try Token.lifetime(pingInterval, option: "--ping-interval")
        _ = try Self.address(listen)
    }

    static func address(_ listen: String) throws -> (host: String, port: Int) {
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]), (0...65535).contains(port),
            colon != listen.startIndex
        else { throw ValidationError("--listen must be HOST:PORT, as in 127.0.0.1:8080") }
        return (String(listen[..<colon]), port)
    }

    func run() async throws {
        let (host, port) = try Self.address(listen)
        var logger = Logger(label: "freshet-server")
        logger.logLevel = ProcessInfo.processInfo.environment["LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info
        var gateway = ServerConfiguration.GatewaySettings()
        gateway.maximumMessageBytes = maxMessageBytes
        gateway.queueLimit = clientQueue
        gateway.pingInterval = try Token.lifetime(pingInterval, option: "--ping-interval")
        let jwtSecret = try secret.secret()
        if jwtSecret == nil { logger.warning("no JWT secret (FRESHET_JWT_SECRET or --jwt-secret-file): the gateway refuses every client") }
        let configuration = ServerConfiguration(
            conninfo: ConnectionTarget.conninfo(url: url), host: host, port: port, orderProcessors: orderProcessors, jwtSecret: jwtSecret,
            gateway: gateway)
        try await FreshetServer(configuration: configuration, logger: logger).run()
    }
}

struct Token: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print a signed gateway token for development.")

    @Option(help: "The user id the token stands for (its sub claim).")
    var user: String

    @Flag(help: "Mark the token as a backend service's, which may read every user's rows.")
    var service = false

    @Option(help: "How long the token lives: 90s, 30m, 1h or 2d.")
    var ttl = "1h"

    @OptionGroup var secret: SecretOptions

    static func lifetime(_ text: String, option: String = "--ttl") throws -> Duration {
        let units: [Character: Int64] = ["s": 1, "m": 60, "h": 3600, "d": 86400]
        guard let unit = text.last.flatMap({ units[$0] }), let count = Int64(text.dropLast()), count > 0 else {
            throw ValidationError("\(option) must be a positive number with s, m, h or d, as in 1h")
        }
        return .seconds(count * unit)
    }

    func validate() throws { _ = try Self.lifetime(ttl) }

    func run() async throws {
        guard let key = try secret.secret() else {
            throw ValidationError("no JWT secret: set FRESHET_JWT_SECRET or pass --jwt-secret-file")
        }
        print(try await GatewayToken.mint(user: user, isService: service, lifetime: try Self.lifetime(ttl), secret: key))
    }
}
