import Foundation
import JWTKit

/// The claims of a gateway token: HS256, `sub` the user id, `"role": "service"` for a backend
/// service that may read every user's rows.
public struct GatewayToken: JWTPayload {
    public var sub: SubjectClaim
    public var exp: ExpirationClaim
    public var role: String?

    public init(user: String, isService: Bool, expiresAt: Date) {
        sub = SubjectClaim(value: user)
        exp = ExpirationClaim(value: expiresAt)
        role = isService ? "service" : nil
    }

    public func verify(using algorithm: some JWTAlgorithm) async throws {
        try exp.verifyNotExpired()
    }

    /// A signed token, as `freshet-server token` prints it for development.
    public static func mint(user: String, isService: Bool, lifetime: Duration, secret: String) async throws -> String {
        let keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
        let seconds = Double(lifetime.components.seconds) + Double(lifetime.components.attoseconds) / 1e18
        return try await keys.sign(GatewayToken(user: user, isService: isService, expiresAt: Date().addingTimeInterval(seconds)))
    }

    /// The claims of `token` if `secret` signed it and it has not expired.
    public static func verified(_ token: String, secret: String) async throws -> GatewayToken {
        let keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
        return try await keys.verify(token, as: GatewayToken.self)
    }
}
