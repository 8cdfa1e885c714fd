import Hummingbird
import HummingbirdWebSocket
import NIOCore

/// The server's request context: the basic WebSocket context, plus the connection's channel, so
/// a refused upgrade can be marked for ``RefusedUpgradeStatus``.
struct GatewayRequestContext: RequestContext, WebSocketRequestContext {
    var coreContext: CoreRequestContextStorage
    let webSocket: WebSocketHandlerReference<Self>
    let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        webSocket = .init()
        channel = source.channel
    }
}
