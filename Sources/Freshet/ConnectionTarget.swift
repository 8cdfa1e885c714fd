import Foundation

/// The server and role a command talks to, printable without secrets.
public struct ConnectionTarget: Equatable, Sendable, CustomStringConvertible {
    public var host: String
    public var port: String
    public var database: String
    public var user: String

    public init(host: String, port: String, database: String, user: String) {
        self.host = host
        self.port = port
        self.database = database
        self.user = user
    }

    /// A best-effort description of a connection string that failed to connect.
    init(conninfo: String) {
        let environment = ProcessInfo.processInfo.environment
        var host = environment["PGHOST"] ?? ""
        var port = environment["PGPORT"] ?? ""
        var database = environment["PGDATABASE"] ?? ""
        var user = environment["PGUSER"] ?? ""
        if let url = URLComponents(string: conninfo), let scheme = url.scheme,
            scheme.hasPrefix("postgres")
        {
            host = url.host ?? url.queryItems?.first { $0.name == "host" }?.value ?? host
            port = url.port.map(String.init) ?? port
            let path = url.path.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
            database = path.isEmpty ? database : path
            user = url.user ?? user
        } else {
            for pair in conninfo.split(separator: " ") {
                let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
                guard parts.count == 2 else { continue }
                switch parts[0] {
                case "host": host = parts[1]
                case "port": port = parts[1]
                case "dbname": database = parts[1]
                case "user": user = parts[1]
                default: break
                }
            }
        }
        self.init(host: host, port: port, database: database, user: user)
    }

    /// Chooses the connection string: an explicit URL, then `DATABASE_URL`, then libpq's own defaults.
    public static func conninfo(url: String?, environment: [String: String] = ProcessInfo.processInfo.environment)
        -> String
    {
        if let url, !url.isEmpty { return url }
        if let url = environment["DATABASE_URL"], !url.isEmpty { return url }
        return ""
    }

    public var description: String {
        "host=\(host.isEmpty ? "(default)" : host) port=\(port) database=\(database) user=\(user)"
    }
}

extension ConnectionTarget {
    /// The same connection string pointed at another database.
    public static func conninfo(_ base: String, database: String) -> String {
        if var url = URLComponents(string: base), let scheme = url.scheme, scheme.hasPrefix("postgres") {
            url.path = "/" + database
            return url.string ?? base
        }
        let quoted = database.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'")
        return "\(base) dbname='\(quoted)'"
    }
}
