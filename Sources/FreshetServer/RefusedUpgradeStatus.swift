import Foundation
import HTTPTypes
import NIOCore
import NIOHTTPTypes

/// Answers an upgrade refused for want of a valid token with 401 and a Bearer challenge, not 400.
///
/// hummingbird-websocket writes an empty 400 for every upgrade its `shouldUpgrade` declines. The
/// gateway marks the connections it declines for their token (``markRefused(_:)``); this handler
/// sits in the HTTP pipeline that a declined upgrade falls back to, and turns that 400 into 401.
final class RefusedUpgradeStatus: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private final class WeakChannel: @unchecked Sendable { weak var channel: (any Channel)? }
    nonisolated(unsafe) private static var refused: [ObjectIdentifier: WeakChannel] = [:]
    private static let lock = NSLock()
    private var isRefused = false

    /// Records that the upgrade on `channel` was declined for its token.
    static func markRefused(_ channel: any Channel) {
        let entry = WeakChannel()
        entry.channel = channel
        lock.withLock {
            refused = refused.filter { $0.value.channel != nil }
            refused[ObjectIdentifier(channel)] = entry
        }
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let channel = context.channel
        isRefused = Self.lock.withLock { Self.refused.removeValue(forKey: ObjectIdentifier(channel))?.channel === channel }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard isRefused, case .head(var response) = unwrapOutboundIn(data), response.status == .badRequest else {
            context.write(data, promise: promise)
            return
        }
        isRefused = false
        response.status = .unauthorized
        response.headerFields[.wwwAuthenticate] = #"Bearer realm="freshet", error="invalid_token""#
        context.write(wrapOutboundOut(.head(response)), promise: promise)
    }
}
