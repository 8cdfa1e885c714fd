import CLibPQ
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

    /// What libpq would connect to for `conninfo` (a URL or `key=value` string, with the `PG*`
    /// variables and libpq's defaults filling the gaps), for describing a connection that failed.
    init(conninfo: String) {
        var values: [String: String] = [:]
        func collect(_ options: UnsafeMutablePointer<PQconninfoOption>) {
            var option = options
            while let keyword = option.pointee.keyword {
                if let value = option.pointee.val { values[String(cString: keyword)] = String(cString: value) }
                option += 1
            }
            PQconninfoFree(options)
        }
        if let defaults = PQconndefaults() { collect(defaults) }
        var error: UnsafeMutablePointer<CChar>?
        if let parsed = PQconninfoParse(conninfo, &error) { collect(parsed) }
        if let error { PQfreemem(error) }
        self.init(
            host: values["host"] ?? values["hostaddr"] ?? "", port: values["port"] ?? "",
            database: values["dbname"] ?? values["user"] ?? "", user: values["user"] ?? "")
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

    /// The same connection string with libpq's `connect_timeout`, unless it sets one already:
    /// without it, a host that accepts and never answers holds a connection attempt forever.
    public static func conninfo(_ base: String, connectTimeoutSeconds seconds: Int) -> String {
        guard !base.contains("connect_timeout") else { return base }
        // Appended as written, so the URL's other parameters keep their encoding.
        if base.hasPrefix("postgres://") || base.hasPrefix("postgresql://") {
            return base + (base.contains("?") ? "&" : "?") + "connect_timeout=\(seconds)"
        }
        return base.isEmpty ? "connect_timeout=\(seconds)" : "\(base) connect_timeout=\(seconds)"
    }
}
