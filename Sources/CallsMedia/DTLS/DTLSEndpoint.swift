internal import CCallsOpenSSL

/// One DTLS 1.2 association with SRTP key export (RFC 5764), as a state machine the caller drives.
///
/// There are no threads or timers inside. The caller:
/// 1. calls `start()` (the client's returned datagrams carry the ClientHello),
/// 2. passes every DTLS datagram from the peer to `feed(datagram:)` and sends the returned datagrams,
/// 3. after each call, (re)schedules a timer for `nextTimeout` and calls `handleTimeout()` when it fires,
/// 4. on `.handshakeComplete(keys)` builds an `SRTPSession` from the keys; on `.failed` tears the peer down.
///
/// The peer is authenticated by the certificate fingerprint from its SDP: the certificate verification callback
/// rejects any other certificate (the handshake fails with a bad_certificate alert, which fails the peer's
/// handshake too), and the fingerprint is checked again once the handshake completes.
///
/// An `SSL` object is not thread-safe: confine an endpoint to one event loop.
public final class DTLSEndpoint {
    /// Where the association is.
    public enum Status: Sendable {
        case idle
        case handshaking
        case established(SRTPKeyingMaterial)
        case failed(DTLSError)
        case closed
    }

    public let role: DTLSRole
    /// The peer's certificate fingerprint, from its SDP.
    public let remoteFingerprint: DTLSFingerprint
    public let configuration: DTLSConfiguration
    public private(set) var status: Status = .idle

    private let context: DTLSContext
    private let ssl: OpaquePointer  // SSL *; owns both BIOs
    private let readBIO: OpaquePointer  // BIO * (memory), owned by ssl
    private let writeBIO: OpaquePointer  // BIO * (memory), owned by ssl
    private let callbackState: Unmanaged<DTLSCallbackState>  // retained; released in deinit after SSL_free
    private var plaintext: [UInt8] = []  // SSL_read scratch, allocated once established

    /// RFC 5764 §4.2: the label for the SRTP keying material exporter.
    private static let exporterLabel = Array("EXTRACTOR-dtls_srtp".utf8)
    /// The largest DTLS record plaintext (RFC 6347 §4.1 via TLS 1.2's 2^14).
    private static let maximumPlaintextLength = 16_384

    /// - Parameters:
    ///   - role: `.server` for the SFU (`a=setup:passive`), `.client` for the project's own client.
    ///   - context: the shared configuration carrying the local identity.
    ///   - remoteFingerprint: the peer's `a=fingerprint` from its SDP.
    ///   - configuration: MTU, offered SRTP profiles, first retransmit timeout.
    public init(
        role: DTLSRole,
        context: DTLSContext,
        remoteFingerprint: DTLSFingerprint,
        configuration: DTLSConfiguration = DTLSConfiguration()
    ) throws(DTLSError) {
        try configuration.validate()
        self.role = role
        self.context = context
        self.remoteFingerprint = remoteFingerprint
        self.configuration = configuration

        OpenSSLErrorQueue.clear()
        guard let ssl = SSL_new(context.pointer) else { throw .drained(.internalError, "SSL_new failed") }
        guard let readBIO = BIO_new(BIO_s_mem()) else {
            SSL_free(ssl)
            throw .drained(.internalError, "BIO_new failed")
        }
        guard let writeBIO = BIO_new(BIO_s_mem()) else {
            BIO_free(readBIO)
            SSL_free(ssl)
            throw .drained(.internalError, "BIO_new failed")
        }
        // An empty memory BIO must read as "retry later", not end of file, or OpenSSL reports a closed transport.
        CCallsOpenSSL_BIO_set_mem_eof_return(readBIO, -1)
        CCallsOpenSSL_BIO_set_mem_eof_return(writeBIO, -1)
        SSL_set_bio(ssl, readBIO, writeBIO)  // ssl owns both from here

        let state = Unmanaged.passRetained(
            DTLSCallbackState(
                expectedFingerprint: remoteFingerprint, initialTimeout: configuration.initialRetransmitTimeout))
        let profiles = configuration.srtpProfiles.map(\.openSSLName).joined(separator: ":")
        // A memory BIO has no path MTU to query: fix both the DTLS MTU and the link MTU (which OpenSSL would
        // otherwise use to recompute the MTU during the handshake). Note SSL_set_tlsext_use_srtp's 0 = success.
        guard SSL_set_ex_data(ssl, 0, state.toOpaque()) == 1,
            SSL_set_tlsext_use_srtp(ssl, profiles) == 0,
            CCallsOpenSSL_DTLS_set_link_mtu(ssl, configuration.mtu) == 1,
            CCallsOpenSSL_SSL_set_mtu(ssl, configuration.mtu) > 0
        else {
            SSL_free(ssl)
            state.release()
            throw .drained(.invalidConfiguration, "OpenSSL rejected the SRTP profiles or the MTU \(configuration.mtu)")
        }
        DTLS_set_timer_cb(ssl) { ssl, previous in
            DTLSCallbackState.nextTimeout(ssl: ssl, previousMicroseconds: previous)
        }
        switch role {
        case .client: SSL_set_connect_state(ssl)
        case .server: SSL_set_accept_state(ssl)
        }
        self.ssl = ssl
        self.readBIO = readBIO
        self.writeBIO = writeBIO
        self.callbackState = state
    }

    /// An endpoint with its own `DTLSContext`. Prefer sharing one context per identity.
    public convenience init(
        role: DTLSRole,
        identity: DTLSIdentity,
        remoteFingerprint: DTLSFingerprint,
        configuration: DTLSConfiguration = DTLSConfiguration()
    ) throws(DTLSError) {
        try self.init(
            role: role, context: try DTLSContext(identity: identity), remoteFingerprint: remoteFingerprint,
            configuration: configuration)
    }

    deinit {
        SSL_free(ssl)  // frees both BIOs; no callback runs after this
        callbackState.release()
    }

    /// The SRTP keys once the handshake is complete, else nil.
    public var keyingMaterial: SRTPKeyingMaterial? {
        if case .established(let keys) = status { keys } else { nil }
    }

    /// Begins the handshake. A client returns its ClientHello; a server returns nothing and waits for one.
    /// Calling it again, or after the endpoint has failed or closed, does nothing.
    public func start() -> DTLSOutput {
        var output = DTLSOutput()
        guard case .idle = status else { return output }
        status = .handshaking
        if role == .client { advanceHandshake(&output) }
        drainOutgoing(into: &output)
        return output
    }

    /// Processes one datagram received from the peer (one UDP payload classified as DTLS, RFC 7983 bytes 20–63).
    /// A server that was not started starts here. Malformed, forged or stale records are discarded silently, as
    /// DTLS requires; input after a failure or close is ignored.
    public func feed(datagram: UnsafeRawBufferPointer) -> DTLSOutput {
        var output = DTLSOutput()
        if case .idle = status, role == .server { status = .handshaking }
        switch status {
        case .handshaking, .established: break
        case .idle, .failed, .closed: return output
        }
        guard datagram.count > 0, datagram.count <= Int(Int32.max) else { return output }
        let written: Bool
        switch DTLSRecordFilter.filter(datagram, minimumCiphertextLength: minimumCiphertextLength) {
        case .unchanged:
            written = BIO_write(readBIO, datagram.baseAddress, Int32(datagram.count)) == Int32(datagram.count)
        case .filtered(let records):
            guard !records.isEmpty else { return output }
            written = BIO_write(readBIO, records, Int32(records.count)) == Int32(records.count)
        }
        guard written else {
            _ = CCallsOpenSSL_BIO_reset(readBIO)
            return output
        }
        if case .handshaking = status { advanceHandshake(&output) }
        if case .established = status { readApplicationData(&output) }
        // DTLS reads a whole datagram at a time; drop anything left so it never merges with the next datagram.
        _ = CCallsOpenSSL_BIO_reset(readBIO)
        drainOutgoing(into: &output)
        return output
    }

    /// Processes one datagram received from the peer.
    public func feed(datagram: [UInt8]) -> DTLSOutput {
        datagram.withUnsafeBytes { feed(datagram: $0) }
    }

    /// The smallest valid encrypted record body for the negotiated cipher (explicit nonce + tag); see
    /// `DTLSRecordFilter`. Before a cipher is chosen no encrypted record can be processed, and 24 (AES-GCM) applies.
    private var minimumCiphertextLength: Int {
        guard let cipher = SSL_get_current_cipher(ssl) else { return 24 }
        return SSL_CIPHER_get_cipher_nid(cipher) == NID_chacha20_poly1305 ? 16 : 24
    }

    /// Time left until OpenSSL wants `handleTimeout()` called (zero when already due), or nil when no
    /// retransmission is pending. Re-read it after every call into the endpoint.
    public var nextTimeout: Duration? {
        switch status {
        case .handshaking, .established: break
        case .idle, .failed, .closed: return nil
        }
        var seconds = 0
        var microseconds = 0
        guard CCallsOpenSSL_DTLSv1_get_timeout(ssl, &seconds, &microseconds) > 0 else { return nil }
        return .seconds(seconds) + .microseconds(microseconds)
    }

    /// Retransmits the last flight if the retransmission timer has expired (OpenSSL ignores early calls).
    /// After OpenSSL's retransmission limit (12 timeouts) the endpoint fails with `.retransmitLimitReached`.
    public func handleTimeout() -> DTLSOutput {
        var output = DTLSOutput()
        switch status {
        case .handshaking, .established: break
        case .idle, .failed, .closed: return output
        }
        OpenSSLErrorQueue.clear()
        if CCallsOpenSSL_DTLSv1_handle_timeout(ssl) < 0 {
            fail(.drained(.retransmitLimitReached, "the peer did not answer the DTLS handshake"), &output)
        }
        drainOutgoing(into: &output)
        return output
    }

    /// Sends close_notify and stops the endpoint. Returns the datagram carrying the alert (if any).
    public func close() -> DTLSOutput {
        var output = DTLSOutput()
        switch status {
        case .handshaking, .established: break
        case .idle, .failed, .closed: return output
        }
        OpenSSLErrorQueue.clear()
        _ = SSL_shutdown(ssl)
        OpenSSLErrorQueue.clear()
        status = .closed
        drainOutgoing(into: &output)
        return output
    }

    // MARK: - Handshake

    private func advanceHandshake(_ output: inout DTLSOutput) {
        OpenSSLErrorQueue.clear()
        let result = SSL_do_handshake(ssl)
        if result == 1 {
            completeHandshake(&output)
            return
        }
        let reason = SSL_get_error(ssl, result)
        if reason == SSL_ERROR_WANT_READ || reason == SSL_ERROR_WANT_WRITE { return }
        let state = callbackState.takeUnretainedValue()
        if state.rejectedFingerprint != nil || reason == SSL_ERROR_SSL && isCertificateRejected() {
            fail(.drained(.fingerprintMismatch, mismatchMessage(actual: state.rejectedFingerprint)), &output)
        } else {
            fail(.drained(.handshakeFailed, "handshake failed (SSL_get_error \(reason))"), &output)
        }
    }

    private func mismatchMessage(actual: DTLSFingerprint?) -> String {
        "the peer's certificate has fingerprint \(actual?.sdpValue ?? "unknown"), "
            + "but its SDP announced \(remoteFingerprint.sdpValue)"
    }

    /// True when OpenSSL recorded a certificate rejection for this connection.
    private func isCertificateRejected() -> Bool {
        SSL_get_verify_result(ssl) == Int(X509_V_ERR_CERT_REJECTED)
    }

    private func completeHandshake(_ output: inout DTLSOutput) {
        // The verify callback already compared the fingerprint; check again on the certificate OpenSSL kept, so
        // no code path (a future session resumption, a changed callback) can skip authentication.
        guard let peer = SSL_get1_peer_certificate(ssl) else {
            fail(DTLSError(.fingerprintMismatch, "the peer presented no certificate"), &output)
            return
        }
        let actual = DTLSFingerprint.of(certificate: peer, algorithm: remoteFingerprint.algorithm)
        X509_free(peer)
        guard actual == remoteFingerprint else {
            _ = SSL_shutdown(ssl)  // tell the peer to stop; OpenSSL has no public call for a fatal alert here
            fail(DTLSError(.fingerprintMismatch, mismatchMessage(actual: actual)), &output)
            return
        }
        guard let selected = SSL_get_selected_srtp_profile(ssl) else {
            fail(DTLSError(.noSRTPProfile, "the peers share no SRTP protection profile (use_srtp)"), &output)
            return
        }
        guard let profile = SRTPProtectionProfile(ianaID: UInt16(truncatingIfNeeded: selected.pointee.id)),
            configuration.srtpProfiles.contains(profile)
        else {
            fail(DTLSError(.noSRTPProfile, "unsupported SRTP profile id \(selected.pointee.id) selected"), &output)
            return
        }
        guard let keys = exportKeys(profile: profile) else {
            fail(.drained(.keyExportFailed, "SSL_export_keying_material failed"), &output)
            return
        }
        status = .established(keys)
        output.events.append(.handshakeComplete(keys))
    }

    /// RFC 5764 §4.2: client key | server key | client salt | server salt, sorted into local and remote.
    private func exportKeys(profile: SRTPProtectionProfile) -> SRTPKeyingMaterial? {
        let keyLength = profile.keyLength
        let saltLength = profile.saltLength
        var material = [UInt8](repeating: 0, count: 2 * (keyLength + saltLength))
        OpenSSLErrorQueue.clear()
        let exported = Self.exporterLabel.withUnsafeBufferPointer { label in
            label.withMemoryRebound(to: CChar.self) { label in
                SSL_export_keying_material(
                    ssl, &material, material.count, label.baseAddress, label.count, nil, 0, 0)
            }
        }
        guard exported == 1 else { return nil }
        let clientKey = Array(material[0..<keyLength])
        let serverKey = Array(material[keyLength..<2 * keyLength])
        let clientSalt = Array(material[2 * keyLength..<2 * keyLength + saltLength])
        let serverSalt = Array(material[2 * keyLength + saltLength..<2 * (keyLength + saltLength)])
        switch role {
        case .client:
            return SRTPKeyingMaterial(
                profile: profile, localKey: clientKey, localSalt: clientSalt, remoteKey: serverKey,
                remoteSalt: serverSalt)
        case .server:
            return SRTPKeyingMaterial(
                profile: profile, localKey: serverKey, localSalt: serverSalt, remoteKey: clientKey,
                remoteSalt: clientSalt)
        }
    }

    // MARK: - Established

    /// Reads every record OpenSSL can decrypt now. SSL_read also answers a retransmitted final flight of the
    /// peer (our last flight was lost) by retransmitting ours.
    private func readApplicationData(_ output: inout DTLSOutput) {
        if plaintext.isEmpty { plaintext = [UInt8](repeating: 0, count: Self.maximumPlaintextLength) }
        while case .established = status {
            OpenSSLErrorQueue.clear()
            let count = plaintext.withUnsafeMutableBytes { SSL_read(ssl, $0.baseAddress, Int32($0.count)) }
            if count > 0 {
                output.events.append(.applicationData(Array(plaintext[0..<Int(count)])))
                continue
            }
            let reason = SSL_get_error(ssl, count)
            switch reason {
            case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
                return
            case SSL_ERROR_ZERO_RETURN:
                status = .closed
                output.events.append(.closed)
            default:
                fail(
                    .drained(.handshakeFailed, "the association failed (SSL_read \(count), SSL_get_error \(reason))"),
                    &output)
            }
        }
    }

    // MARK: - Plumbing

    private func fail(_ error: DTLSError, _ output: inout DTLSOutput) {
        status = .failed(error)
        output.events.append(.failed(error))
    }

    /// Moves what OpenSSL wrote (handshake flights, alerts, application data) into MTU-sized datagrams.
    private func drainOutgoing(into output: inout DTLSOutput) {
        let pending = Int(BIO_ctrl_pending(writeBIO))
        guard pending > 0, pending <= Int(Int32.max) else { return }
        var bytes = [UInt8](repeating: 0, count: pending)
        let read = bytes.withUnsafeMutableBytes { BIO_read(writeBIO, $0.baseAddress, Int32($0.count)) }
        guard read > 0 else { return }
        DTLSRecordPacker.pack(bytes[0..<Int(read)], mtu: configuration.mtu, into: &output.datagrams)
    }
}

@available(*, unavailable)
extension DTLSEndpoint: Sendable {}
