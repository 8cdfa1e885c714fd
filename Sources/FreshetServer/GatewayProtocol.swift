import Foundation

/// A problem with one client message, answered with an `error` frame; the connection stays open.
struct GatewayError: Error {
    /// A SQLSTATE from the feed, or one of the gateway's own codes (`bad_json`, `unknown_type`,
    /// `missing_field`, `bad_cursor`, `unavailable`).
    var code: String
    var message: String
}

/// Seed 002's WebSocket protocol, made lossless: the client's messages and the server's frames.
enum GatewayProtocol {
    /// A message a client sends.
    enum Message {
        case subscribe(table: String, filters: [String: Any], clientID: String, cursor: FeedCursor?)
        case unsubscribe(table: String, clientID: String)
        case ping
        case ack(FeedCursor)
    }

    /// Parses one text frame, and the JSON object it holds for the `ref` of an answer.
    static func parse(_ text: String) -> (message: Result<Message, GatewayError>, reference: Any) {
        guard let object = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] else {
            return (.failure(GatewayError(code: "bad_json", message: "a message must be one JSON object")), String(text.prefix(200)))
        }
        return (Result { try message(object) }.mapError { $0 as? GatewayError ?? GatewayError(code: "bad_json", message: "\($0)") }, object)
    }

    private static func message(_ object: [String: Any]) throws -> Message {
        func text(_ key: String) throws -> String {
            guard let value = object[key] as? String, !value.isEmpty else {
                throw GatewayError(code: "missing_field", message: "\"\(key)\" must be a non-empty string")
            }
            return value
        }
        func cursor(_ key: String, required: Bool) throws -> FeedCursor? {
            guard let value = object[key], !(value is NSNull) else {
                if required { throw GatewayError(code: "missing_field", message: "\"\(key)\" must be a cursor such as \"41/1077\"") }
                return nil
            }
            guard let string = value as? String, let parsed = FeedCursor(string) else {
                throw GatewayError(code: "bad_cursor", message: "\"\(key)\" must be a cursor such as \"41/1077\", as db_change frames carry")
            }
            return parsed
        }
        switch try text("type") {
        case "subscribe":
            let filters: [String: Any]
            switch object["filters"] {
            case nil, is NSNull: filters = [:]
            case let given as [String: Any]: filters = given
            default: throw GatewayError(code: "22023", message: "\"filters\" must be a JSON object of column: value or column: [values]")
            }
            return .subscribe(table: try text("table"), filters: filters, clientID: try text("client_id"), cursor: try cursor("cursor", required: false))
        case "unsubscribe": return .unsubscribe(table: try text("table"), clientID: try text("client_id"))
        case "ping": return .ping
        case "ack": return .ack(try cursor("cursor", required: true)!)
        case let other: throw GatewayError(code: "unknown_type", message: "unknown message type \"\(other.prefix(64))\"; use subscribe, unsubscribe, ping or ack")
        }
    }

    static func subscribed(table: String, clientID: String, cursor: FeedCursor) -> String {
        frame(["type": "subscribed", "table": table, "client_id": clientID, "cursor": cursor.description])
    }

    static func unsubscribed(table: String, clientID: String) -> String {
        frame(["type": "unsubscribed", "table": table, "client_id": clientID])
    }

    static let pong = frame(["type": "pong"])

    static func error(code: String, message: String, reference: Any) -> String {
        frame(["type": "error", "code": code, "message": message, "ref": reference])
    }

    private static func frame(_ object: [String: Any]) -> String {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }
}
