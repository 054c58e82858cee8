internal import CCallsOpenSSL

/// A TLS client as a state machine over two memory BIOs, for the media client's TURN-over-TLS (`turns:`): no
/// sockets, no threads. The caller passes every byte read from the TCP connection to ``feed(_:)``, writes
/// ``Output/toNetwork`` to the connection after every call, and hands plaintext to ``write(_:)``.
///
/// Certificates are verified in report mode, like `callsctl probe turn`: the handshake completes with an untrusted
/// certificate and ``verifyError`` says why, so a doctor can say both "the relay works" and "browsers will refuse
/// its certificate".
///
/// An `SSL` object is not thread-safe: confine an engine to one event loop.
final class TLSClientEngine {
    struct Output {
        /// Ciphertext to write to the connection.
        var toNetwork: [UInt8] = []
        /// Application bytes decrypted from what was fed.
        var plaintext: [UInt8] = []
        /// True once, on the call that completed the handshake.
        var handshakeCompleted = false
        /// Set when the connection failed (bad record, alert, handshake failure); the engine is then unusable.
        var failure: String?
        /// The peer sent close_notify.
        var closed = false
    }

    private let ctx: OpaquePointer  // SSL_CTX *
    private let ssl: OpaquePointer  // SSL *, owns both BIOs
    private let readBIO: OpaquePointer
    private let writeBIO: OpaquePointer
    private(set) var isEstablished = false
    private var failed = false
    /// Why the certificate is not trusted (nil when it is, or before the handshake completed).
    private(set) var verifyError: String?
    private(set) var protocolVersion = ""

    /// - Parameters:
    ///   - serverName: sent as SNI and checked against the certificate (an IP address is checked as such).
    ///   - caFile: extra PEM trust anchors.
    init(serverName: String?, caFile: String?) throws(MediaError) {
        ERR_clear_error()
        guard let ctx = SSL_CTX_new(TLS_client_method()) else {
            throw MediaError(.internalError, "cannot create a TLS context: \(Self.drainErrors())")
        }
        SSL_CTX_set_default_verify_paths(ctx)
        if let caFile, SSL_CTX_load_verify_locations(ctx, caFile, nil) != 1 {
            SSL_CTX_free(ctx)
            throw MediaError(.invalidConfiguration, "cannot load CA file \(caFile): \(Self.drainErrors())")
        }
        guard let ssl = SSL_new(ctx), let readBIO = BIO_new(BIO_s_mem()), let writeBIO = BIO_new(BIO_s_mem()) else {
            SSL_CTX_free(ctx)
            throw MediaError(.internalError, "cannot create a TLS session: \(Self.drainErrors())")
        }
        CCallsOpenSSL_BIO_set_mem_eof_return(readBIO, -1)
        CCallsOpenSSL_BIO_set_mem_eof_return(writeBIO, -1)
        SSL_set_bio(ssl, readBIO, writeBIO)
        self.ctx = ctx
        self.ssl = ssl
        self.readBIO = readBIO
        self.writeBIO = writeBIO
        if let serverName, !serverName.isEmpty {
            if serverName.contains(":") || serverName.allSatisfy({ $0.isNumber || $0 == "." }) {
                X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), serverName)
            } else {
                _ = serverName.withCString { name in
                    SSL_ctrl(
                        ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, Int(TLSEXT_NAMETYPE_host_name),
                        UnsafeMutableRawPointer(mutating: name))
                }
                SSL_set1_host(ssl, serverName)
            }
        }
        SSL_set_verify(ssl, SSL_VERIFY_NONE, nil)
        SSL_set_connect_state(ssl)
    }

    deinit {
        SSL_free(ssl)
        SSL_CTX_free(ctx)
    }

    /// Starts the handshake: the output carries the ClientHello.
    func start() -> Output {
        var output = Output()
        advance(&output)
        return output
    }

    /// Takes bytes read from the connection.
    func feed(_ bytes: UnsafeRawBufferPointer) -> Output {
        var output = Output()
        guard !failed else { return output }
        if bytes.count > 0 { _ = BIO_write(readBIO, bytes.baseAddress, Int32(bytes.count)) }
        advance(&output)
        return output
    }

    /// Encrypts `plaintext` (call only once established).
    func write(_ plaintext: [UInt8]) -> Output {
        var output = Output()
        guard isEstablished, !failed, !plaintext.isEmpty else { return output }
        ERR_clear_error()
        let n = plaintext.withUnsafeBytes { SSL_write(ssl, $0.baseAddress, Int32($0.count)) }
        if n <= 0 { fail(&output, "TLS write failed: \(Self.drainErrors())") }
        drainNetwork(&output)
        return output
    }

    /// Sends close_notify.
    func close() -> Output {
        var output = Output()
        guard isEstablished, !failed else { return output }
        ERR_clear_error()
        _ = SSL_shutdown(ssl)
        drainNetwork(&output)
        return output
    }

    private func advance(_ output: inout Output) {
        if !isEstablished {
            ERR_clear_error()
            let rc = SSL_do_handshake(ssl)
            if rc == 1 {
                isEstablished = true
                output.handshakeCompleted = true
                let result = SSL_get_verify_result(ssl)
                verifyError = result == X509_V_OK ? nil : String(cString: X509_verify_cert_error_string(result))
                protocolVersion = String(cString: SSL_get_version(ssl))
            } else {
                let err = SSL_get_error(ssl, rc)
                if err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE {
                    let detail = Self.drainErrors()
                    fail(&output, "TLS handshake failed: \(detail.isEmpty ? "the server closed the connection (not TLS?)" : detail)")
                }
            }
        }
        if isEstablished && !failed {
            var chunk = [UInt8](repeating: 0, count: 16_384)
            while true {
                ERR_clear_error()
                let n = chunk.withUnsafeMutableBytes { SSL_read(ssl, $0.baseAddress, Int32($0.count)) }
                if n > 0 {
                    output.plaintext += chunk[0..<Int(n)]
                    continue
                }
                let err = SSL_get_error(ssl, n)
                if err == SSL_ERROR_ZERO_RETURN { output.closed = true }
                else if err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE {
                    fail(&output, "TLS receive failed: \(Self.drainErrors())")
                }
                break
            }
        }
        drainNetwork(&output)
    }

    private func drainNetwork(_ output: inout Output) {
        var chunk = [UInt8](repeating: 0, count: 16_384)
        while BIO_ctrl_pending(writeBIO) > 0 {
            let n = chunk.withUnsafeMutableBytes { BIO_read(writeBIO, $0.baseAddress, Int32($0.count)) }
            if n <= 0 { break }
            output.toNetwork += chunk[0..<Int(n)]
        }
    }

    private func fail(_ output: inout Output, _ message: String) {
        failed = true
        output.failure = message
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
