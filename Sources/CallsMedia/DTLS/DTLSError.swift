internal import CCallsOpenSSL

/// A DTLS failure: what went wrong (`code`), a human-readable explanation, and OpenSSL's own error queue at the
/// time (oldest first), for example `error:0A000412:SSL routines::sslv3 alert bad certificate`.
public struct DTLSError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The kind of failure. New kinds may be added; compare with `==` against the static members.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: Hashable, Sendable {
            case invalidConfiguration
            case identityGeneration
            case handshakeFailed
            case fingerprintMismatch
            case noSRTPProfile
            case keyExportFailed
            case retransmitLimitReached
            case internalError
        }

        private let base: Base

        private init(_ base: Base) {
            self.base = base
        }

        /// A setting was rejected (for example an MTU below OpenSSL's DTLS minimum of 256).
        public static let invalidConfiguration = Code(.invalidConfiguration)
        /// The key pair or self-signed certificate could not be created.
        public static let identityGeneration = Code(.identityGeneration)
        /// The handshake failed inside OpenSSL, or the peer sent a fatal alert. `openSSLErrors` says which.
        public static let handshakeFailed = Code(.handshakeFailed)
        /// The peer's certificate does not have the fingerprint announced in its SDP.
        public static let fingerprintMismatch = Code(.fingerprintMismatch)
        /// The handshake completed without an SRTP profile both sides support (no `use_srtp` overlap).
        public static let noSRTPProfile = Code(.noSRTPProfile)
        /// `SSL_export_keying_material` failed.
        public static let keyExportFailed = Code(.keyExportFailed)
        /// The peer stopped answering: OpenSSL gave up after its retransmission limit.
        public static let retransmitLimitReached = Code(.retransmitLimitReached)
        /// An OpenSSL call that should not fail did (allocation failure or a bug).
        public static let internalError = Code(.internalError)

        public var description: String { String(describing: base) }
    }

    public let code: Code
    public let message: String
    /// OpenSSL's error queue when the failure was detected, oldest first (may be empty).
    public let openSSLErrors: [String]

    init(_ code: Code, _ message: String, openSSLErrors: [String] = []) {
        self.code = code
        self.message = message
        self.openSSLErrors = openSSLErrors
    }

    /// An error carrying (and emptying) the calling thread's OpenSSL error queue.
    static func drained(_ code: Code, _ message: String) -> DTLSError {
        DTLSError(code, message, openSSLErrors: OpenSSLErrorQueue.drain())
    }

    public var description: String {
        openSSLErrors.isEmpty
            ? "DTLS \(code): \(message)" : "DTLS \(code): \(message) [\(openSSLErrors.joined(separator: "; "))]"
    }
}

/// OpenSSL's per-thread error queue. Clear it before each call whose failure is read from it; drain it after.
enum OpenSSLErrorQueue {
    static func clear() {
        ERR_clear_error()
    }

    /// Pops every queued error as OpenSSL's one-line text, oldest first.
    static func drain() -> [String] {
        var messages: [String] = []
        while case let code = ERR_get_error(), code != 0 {
            var text = [CChar](repeating: 0, count: 256)
            text.withUnsafeMutableBufferPointer { ERR_error_string_n(code, $0.baseAddress, $0.count) }
            messages.append(text.withUnsafeBufferPointer { String(cString: $0.baseAddress!) })
        }
        return messages
    }
}
