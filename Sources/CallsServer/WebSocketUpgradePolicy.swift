import Foundation
import NIOHTTP1

/// Which requests the API port upgrades to a signaling WebSocket.
///
/// Only a clean RFC 6455 handshake on `/ws`: `Connection` lists `upgrade` and the request has no body. swift-nio's
/// upgrade handler accepts a request with an `Upgrade` header even when `Connection` does not list `upgrade`, while
/// its HTTP parser then goes on parsing what follows as more requests; those arrive, already decoded, at the
/// WebSocket frame decoder after the switch, and swift-nio stops the whole process ("tried to decode as type
/// ByteBuffer but found HTTPPart"). One such request, with a body and a second request in the next read, killed
/// `serve` (found by the `http` fuzz target). Anything else stays an ordinary HTTP request.
public enum WebSocketUpgradePolicy {
    public static func accepts(_ head: HTTPRequestHead) -> Bool {
        let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
        guard path == "/ws" else { return false }
        let connection = head.headers["connection"].flatMap { $0.split(separator: ",") }
            .map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        guard connection.contains("upgrade") else { return false }
        // No body: a GET handshake has none (RFC 6455 §4.1), and a body is where the parsers part ways.
        guard !head.headers.contains(name: "transfer-encoding") else { return false }
        return head.headers["content-length"].allSatisfy { $0.trimmingCharacters(in: .whitespaces) == "0" }
    }
}
