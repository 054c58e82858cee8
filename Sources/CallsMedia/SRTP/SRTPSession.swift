internal import CCallsSRTP

/// SRTP for one DTLS-SRTP association over libsrtp2: an outbound context (protect, local key) and an inbound
/// context (unprotect, remote key), each matching any SSRC, with libsrtp's default 128-packet replay window.
///
/// RTP protect and unprotect run on OpenSSL EVP instead, for both profiles (`OpenSSLGCMProtector`,
/// `OpenSSLGCMUnprotector`: the same bytes as libsrtp2, the same 128-packet replay window, no allocation per packet);
/// RTCP stays on libsrtp2.
///
/// Confine a session to one event loop: it is not thread-safe.
public final class SRTPSession: SRTPTransform {
    /// Which library protects outgoing RTP.
    public enum RTPProtectBackend: Sendable, Hashable {
        /// OpenSSL EVP for RTP (protect and unprotect, both profiles), libsrtp2 for RTCP (the default).
        case automatic
        /// libsrtp2 for every profile (for comparison tests and benchmarks).
        case libsrtp
    }

    /// Spare bytes an RTP protect call may append (libsrtp2's `SRTP_MAX_TRAILER_LEN`).
    public static let maxTrailerLength = Int(CCallsSRTP_max_trailer_len())
    /// Spare bytes an RTCP protect call may append: the trailer plus the 4-byte SRTCP index.
    public static let maxRTCPTrailerLength = maxTrailerLength + 4

    public let profile: SRTPProtectionProfile
    /// libsrtp2 contexts: made at once when they carry RTP, else (RTP on OpenSSL EVP) at the first SRTCP packet
    /// each way, so a session that never sends or receives RTCP (a silent listener) does not hold them (with
    /// Debian's NSS backend they are most of a session's SRTP memory).
    private var outboundContext: LibSRTPContext?
    private var inboundContext: LibSRTPContext?
    private let outboundMasterKey: [UInt8]
    private let inboundMasterKey: [UInt8]
    private let allowRepeatTransmission: Bool
    private let gcmProtector: OpenSSLGCMProtector?
    private let gcmUnprotector: OpenSSLGCMUnprotector?

    /// - Parameters:
    ///   - keyingMaterial: the keys from `DTLSEndpoint`'s `handshakeComplete` event.
    ///   - allowRepeatTransmission: let protect accept an RTP index it already protected. Needed to resend a packet
    ///     under its original sequence number (a NACK answer without RTX); only safe when the payload is identical.
    ///   - rtpProtectBackend: which library protects RTP (see `RTPProtectBackend`).
    public init(
        keyingMaterial: SRTPKeyingMaterial, allowRepeatTransmission: Bool = false,
        rtpProtectBackend: RTPProtectBackend = .automatic
    ) throws(SRTPError) {
        guard LibSRTPLibrary.isReady else { throw .libraryUnavailable }
        profile = keyingMaterial.profile
        outboundMasterKey = keyingMaterial.localKey + keyingMaterial.localSalt
        inboundMasterKey = keyingMaterial.remoteKey + keyingMaterial.remoteSalt
        self.allowRepeatTransmission = allowRepeatTransmission
        if profile == .aeadAES128GCM, rtpProtectBackend == .automatic {
            gcmProtector = try OpenSSLGCMProtector(
                masterKey: keyingMaterial.localKey, masterSalt: keyingMaterial.localSalt,
                allowRepeatTransmission: allowRepeatTransmission)
            gcmUnprotector = try OpenSSLGCMUnprotector(
                masterKey: keyingMaterial.remoteKey, masterSalt: keyingMaterial.remoteSalt)
        } else if profile == .aes128CMHMACSHA1_80, rtpProtectBackend == .automatic {
            gcmProtector = try OpenSSLGCMProtector(
                cmMasterKey: keyingMaterial.localKey, masterSalt: keyingMaterial.localSalt,
                allowRepeatTransmission: allowRepeatTransmission)
            gcmUnprotector = try OpenSSLGCMUnprotector(
                cmMasterKey: keyingMaterial.remoteKey, masterSalt: keyingMaterial.remoteSalt)
        } else {
            gcmProtector = nil
            gcmUnprotector = nil
            outboundContext = try makeOutbound()
            inboundContext = try makeInbound()
        }
    }

    private func makeOutbound() throws(SRTPError) -> LibSRTPContext {
        try LibSRTPContext(
            profile: profile, direction: ssrc_any_outbound, masterKey: outboundMasterKey,
            allowRepeatTransmission: allowRepeatTransmission)
    }

    private func makeInbound() throws(SRTPError) -> LibSRTPContext {
        try LibSRTPContext(profile: profile, direction: ssrc_any_inbound, masterKey: inboundMasterKey, allowRepeatTransmission: false)
    }

    private func outbound() throws(SRTPError) -> LibSRTPContext {
        if let c = outboundContext { return c }
        let c = try makeOutbound()
        outboundContext = c
        return c
    }

    private func inbound() throws(SRTPError) -> LibSRTPContext {
        if let c = inboundContext { return c }
        let c = try makeInbound()
        inboundContext = c
        return c
    }

    public func protectRTP(_ buffer: UnsafeMutableRawBufferPointer, length: Int) throws(SRTPError) -> Int {
        guard length >= 0, length <= buffer.count else { throw .malformedPacket }
        guard let headerLength = Self.rtpHeaderLength(buffer, length: length) else { throw .malformedPacket }
        guard buffer.count - length >= Self.maxTrailerLength else { throw .bufferTooSmall }
        if let gcmProtector {
            return try gcmProtector.protect(buffer, length: length, headerLength: headerLength)
        }
        return try call(srtp_protect, try outbound(), buffer, length)
    }

    public func unprotectRTP(_ buffer: UnsafeMutableRawBufferPointer, length: Int) throws(SRTPError) -> Int {
        guard length >= 0, length <= buffer.count else { throw .malformedPacket }
        guard let headerLength = Self.rtpHeaderLength(buffer, length: length) else { throw .malformedPacket }
        if let gcmUnprotector {
            return try gcmUnprotector.unprotect(buffer, length: length, headerLength: headerLength)
        }
        return try call(srtp_unprotect, try inbound(), buffer, length)
    }

    public func protectRTCP(_ buffer: UnsafeMutableRawBufferPointer, length: Int) throws(SRTPError) -> Int {
        guard length >= 0, length <= buffer.count, Self.isRTCPHeader(buffer, length: length) else {
            throw .malformedPacket
        }
        guard buffer.count - length >= Self.maxRTCPTrailerLength else { throw .bufferTooSmall }
        return try call(srtp_protect_rtcp, try outbound(), buffer, length)
    }

    public func unprotectRTCP(_ buffer: UnsafeMutableRawBufferPointer, length: Int) throws(SRTPError) -> Int {
        guard length >= 0, length <= buffer.count, Self.isRTCPHeader(buffer, length: length) else {
            throw .malformedPacket
        }
        return try call(srtp_unprotect_rtcp, try inbound(), buffer, length)
    }

    /// Runs one libsrtp packet function and maps its status.
    private func call(
        _ function: (OpaquePointer?, UnsafeMutableRawPointer?, UnsafeMutablePointer<Int32>?) -> srtp_err_status_t,
        _ context: LibSRTPContext,
        _ buffer: UnsafeMutableRawBufferPointer,
        _ length: Int
    ) throws(SRTPError) -> Int {
        guard length <= Int(Int32.max) - Self.maxRTCPTrailerLength else { throw .malformedPacket }
        var newLength = Int32(length)
        let status = function(context.pointer, buffer.baseAddress, &newLength)
        guard status == srtp_err_status_ok else { throw Self.error(for: status) }
        // libsrtp never grows a packet past its trailer allowance; check rather than trust before slicing.
        guard newLength >= 0, Int(newLength) <= buffer.count else { throw .backend(code: -1) }
        return Int(newLength)
    }

    private static func error(for status: srtp_err_status_t) -> SRTPError {
        switch status {
        case srtp_err_status_auth_fail: .authenticationFailed
        case srtp_err_status_replay_fail: .replayed
        case srtp_err_status_replay_old: .tooOld
        case srtp_err_status_bad_param, srtp_err_status_parse_err: .malformedPacket
        default: .backend(code: Int32(status.rawValue))
        }
    }

    /// The length of the RTP header (fixed part, CSRCs, extension), or nil when `length` bytes are not a version-2
    /// RTP packet whose header fits (RFC 3550 §5.1, §5.3.1). libsrtp checks too; this keeps garbage away from it.
    static func rtpHeaderLength(_ buffer: UnsafeMutableRawBufferPointer, length: Int) -> Int? {
        guard length >= 12, buffer[0] >> 6 == 2 else { return nil }
        var header = 12 + 4 * Int(buffer[0] & 0x0F)
        if buffer[0] & 0x10 != 0 {
            guard length >= header + 4 else { return nil }
            let words = Int(buffer[header + 2]) << 8 | Int(buffer[header + 3])
            header += 4 + 4 * words
        }
        return header <= length ? header : nil
    }

    /// True when `length` bytes start like a version-2 RTCP packet (RFC 3550 §6.4: at least the 8-byte header).
    static func isRTCPHeader(_ buffer: UnsafeMutableRawBufferPointer, length: Int) -> Bool {
        length >= 8 && buffer[0] >> 6 == 2
    }
}

@available(*, unavailable)
extension SRTPSession: Sendable {}
