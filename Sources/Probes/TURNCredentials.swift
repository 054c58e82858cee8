import Crypto
import Foundation

/// Credentials for a TURN server.
public enum TURNCredentials: Sendable {
    /// A fixed user name and password (coturn `user=`, or REST credentials someone else made).
    case longTerm(username: String, password: String)
    /// TURN REST (the Calls plugin's and rtcd's scheme): user name `expiry:user`, password
    /// base64(HMAC-SHA1(secret, user name)).
    case rest(secret: String, user: String, ttl: Int)

    /// REST credentials for `user`, valid until `now + ttl`.
    public static func restCredentials(secret: String, user: String, expiry: Date) -> (username: String, password: String) {
        let username = "\(Int(expiry.timeIntervalSince1970)):\(user)"
        let mac = HMAC<Insecure.SHA1>.authenticationCode(for: Data(username.utf8), using: SymmetricKey(data: Data(secret.utf8)))
        return (username, Data(mac).base64EncodedString())
    }

    /// The user name and password to send now.
    func resolve(now: Date) -> (username: String, password: String) {
        switch self {
        case .longTerm(let u, let p): return (u, p)
        case .rest(let secret, let user, let ttl):
            return Self.restCredentials(secret: secret, user: user, expiry: now.addingTimeInterval(TimeInterval(ttl)))
        }
    }

    /// The expiry encoded in a REST-style user name (`1700000000:alice`), if it has one.
    public static func restExpiry(of username: String) -> Date? {
        guard let colon = username.firstIndex(of: ":"), let seconds = Int(username[..<colon]), seconds > 1_000_000_000 else {
            return nil
        }
        return Date(timeIntervalSince1970: TimeInterval(seconds))
    }
}
