internal import CCallsOpenSSL
import CallsWire
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// What the probe learned about the server's certificate.
public struct TLSPeerInfo: Sendable, Equatable {
    /// Whether the chain verified against the trust store and the name matched.
    public let verified: Bool
    /// OpenSSL's reason when not verified (for example "self-signed certificate").
    public let verifyError: String?
    public let protocolVersion: String
    public let cipher: String
    public let subject: String?
}

/// TLS over a ``TCPProbeStream`` through the system OpenSSL (the same library the media server uses,
/// so the probe needs no second TLS stack). The handshake always completes when the server speaks TLS;
/// certificate problems are reported in ``peer`` rather than aborting, so a probe can say both "TURN
/// works" and "its certificate would be rejected by browsers".
public final class TLSProbeStream: ProbeStream {
    private let tcp: TCPProbeStream
    private let ctx: OpaquePointer  // SSL_CTX *
    private let ssl: OpaquePointer  // SSL *
    public private(set) var peer: TLSPeerInfo

    /// - Parameters:
    ///   - serverName: SNI and the name checked against the certificate.
    ///   - caFile: Extra PEM trust anchors (a private CA or a self-signed certificate).
    public init(over tcp: TCPProbeStream, serverName: String?, caFile: String?, until deadline: ContinuousClock.Instant)
        throws(ProbeNetworkError)
    {
        self.tcp = tcp
        ERR_clear_error()
        guard let ctx = SSL_CTX_new(TLS_client_method()) else {
            throw ProbeNetworkError(.tls, "cannot create a TLS context: \(Self.drainErrors())")
        }
        self.ctx = ctx
        SSL_CTX_set_default_verify_paths(ctx)
        if let caFile, SSL_CTX_load_verify_locations(ctx, caFile, nil) != 1 {
            SSL_CTX_free(ctx)
            throw ProbeNetworkError(.tls, "cannot load CA file \(caFile): \(Self.drainErrors())")
        }
        guard let ssl = SSL_new(ctx) else {
            SSL_CTX_free(ctx)
            throw ProbeNetworkError(.tls, "cannot create a TLS session: \(Self.drainErrors())")
        }
        self.ssl = ssl
        peer = TLSPeerInfo(verified: false, verifyError: nil, protocolVersion: "", cipher: "", subject: nil)
        SSL_set_fd(ssl, tcp.fd)
        if let serverName, STUNAddress(ip: serverName, port: 0) == nil {
            _ = serverName.withCString { name in
                SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, Int(TLSEXT_NAMETYPE_host_name), UnsafeMutableRawPointer(mutating: name))
            }
            SSL_set1_host(ssl, serverName)
        } else if let serverName {
            X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), serverName)
        }
        // Verify in "report" mode: SSL_VERIFY_NONE still computes the verify result.
        SSL_set_verify(ssl, SSL_VERIFY_NONE, nil)
        while true {
            ERR_clear_error()
            let rc = SSL_connect(ssl)
            if rc == 1 { break }
            let err = SSL_get_error(ssl, rc)
            if err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE {
                let events = Int16(err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT)
                if try !waitFor(tcp.fd, events: events, until: deadline) {
                    throw ProbeNetworkError(.timeout, "TLS handshake with \(tcp.remoteAddress): no answer in time")
                }
                continue
            }
            let detail = Self.drainErrors()
            throw ProbeNetworkError(
                .tls, "TLS handshake with \(tcp.remoteAddress) failed: \(detail.isEmpty ? "the server closed the connection (not TLS?)" : detail)")
        }
        let verifyResult = SSL_get_verify_result(ssl)
        let subject: String? = SSL_get1_peer_certificate(ssl).flatMap { cert in
            defer { X509_free(cert) }
            guard let name = X509_get_subject_name(cert), let text = X509_NAME_oneline(name, nil, 0) else { return nil }
            defer { CRYPTO_free(text, #file, #line) }
            return String(cString: text)
        }
        peer = TLSPeerInfo(
            verified: verifyResult == X509_V_OK,
            verifyError: verifyResult == X509_V_OK ? nil : String(cString: X509_verify_cert_error_string(verifyResult)),
            protocolVersion: String(cString: SSL_get_version(ssl)),
            cipher: SSL_get_current_cipher(ssl).map { String(cString: SSL_CIPHER_get_name($0)) } ?? "",
            subject: subject)
    }

    deinit {
        SSL_free(ssl)
        SSL_CTX_free(ctx)
    }

    public var localAddress: STUNAddress? { tcp.localAddress }
    public var remoteAddress: STUNAddress { tcp.remoteAddress }

    public func write(_ bytes: [UInt8], until deadline: ContinuousClock.Instant) throws(ProbeNetworkError) {
        var offset = 0
        while offset < bytes.count {
            ERR_clear_error()
            let n = bytes.withUnsafeBytes { raw in
                SSL_write(ssl, raw.baseAddress!.advanced(by: offset), Int32(raw.count - offset))
            }
            if n > 0 {
                offset += Int(n)
                continue
            }
            let err = SSL_get_error(ssl, n)
            if err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE {
                if try !waitFor(tcp.fd, events: Int16(err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT), until: deadline) {
                    throw ProbeNetworkError(.timeout, "TLS send to \(remoteAddress): timed out")
                }
                continue
            }
            throw ProbeNetworkError(.closed, "TLS send to \(remoteAddress) failed: \(Self.drainErrors())")
        }
    }

    public func read(until deadline: ContinuousClock.Instant) throws(ProbeNetworkError) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: 16_384)
        while true {
            ERR_clear_error()
            let n = buffer.withUnsafeMutableBytes { SSL_read(ssl, $0.baseAddress, Int32($0.count)) }
            if n > 0 { return Array(buffer[0..<Int(n)]) }
            let err = SSL_get_error(ssl, n)
            if err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE {
                if try !waitFor(tcp.fd, events: Int16(err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT), until: deadline) {
                    return nil
                }
                continue
            }
            if err == SSL_ERROR_ZERO_RETURN { throw ProbeNetworkError(.closed, "\(remoteAddress) closed the TLS connection") }
            throw ProbeNetworkError(.closed, "TLS receive from \(remoteAddress) failed: \(Self.drainErrors())")
        }
    }

    static func drainErrors() -> String {
        var parts: [String] = []
        while true {
            let code = ERR_get_error()
            if code == 0 { break }
            var buf = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &buf, buf.count)
            parts.append(String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return parts.joined(separator: "; ")
    }
}
