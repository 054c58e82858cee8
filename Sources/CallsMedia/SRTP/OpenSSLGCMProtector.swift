internal import CCallsOpenSSL

/// SRTP protect of RTP packets with AEAD_AES_128_GCM (RFC 7714) over OpenSSL EVP, for `SRTPSession`'s outbound
/// direction.
///
/// Why: Debian's libsrtp2 is built against NSS and sets up a cipher context on every call (about 5 allocations and
/// a mutex per packet, see docs/performance.md); here one `EVP_CIPHER_CTX` is keyed once and each packet only sets
/// its IV, so protect allocates nothing. The output is byte-for-byte libsrtp2's (tested in `SRTPSessionTests`).
///
/// Per packet (RFC 7714 §8): IV = (0x0000 ‖ SSRC ‖ ROC ‖ SEQ) XOR the 12-byte session salt; the RTP header
/// (fixed part, CSRCs, extension) is the AAD; the payload is encrypted in place and the 16-byte tag appended. Session
/// key and salt come from the RFC 3711 AES-CM PRF (labels 0x00 and 0x02), the 96-bit master salt extended with two
/// zero bytes (RFC 7714 errata 4938), as libsrtp2 does.
///
/// The rollover counter of each SSRC is estimated from its sequence numbers like a receiver does (RFC 3711 §3.3.1,
/// Appendix A), since a forwarding server sends the publishers' sequence numbers, which may arrive reordered;
/// libsrtp2 estimates it the same way for outbound streams. Without `allowRepeatTransmission`, an index already sent
/// in the last 64 (or older than that) is refused as `.replayed`/`.tooOld` (libsrtp2's window is 128).
///
/// Not thread-safe: confined to its `SRTPSession`'s owner.
final class OpenSSLGCMProtector {
    static let tagLength = 16

    private let context: OpaquePointer  // EVP_CIPHER_CTX *
    private var salt: (UInt32, UInt32, UInt32) = (0, 0, 0)  // 12 bytes, in memory order
    /// AES_CM_128_HMAC_SHA1_80 instead of GCM: the HMAC-SHA1 key states and the 14-byte session salt.
    private let cmAuthentication: OpaquePointer?
    private var cmSalt: (UInt64, UInt64) = (0, 0)
    private let allowRepeatTransmission: Bool
    private var streams: [UInt32: StreamState] = [:]

    /// Highest index sent per SSRC and the send history behind it.
    private struct StreamState {
        /// 48-bit packet index (ROC << 16 | SEQ) of the highest packet sent.
        var highest: UInt64
        /// Bit i set: index `highest - i` was sent.
        var window: UInt64
    }

    init(masterKey: [UInt8], masterSalt: [UInt8], allowRepeatTransmission: Bool) throws(SRTPError) {
        let (sessionKey, _, sessionSalt) = try SRTPKeyDerivation.sessionKeys(
            masterKey: masterKey, masterSalt: masterSalt, saltLength: 12, authKeyLength: 0)
        guard let context = CCallsOpenSSL_gcm_context_new(sessionKey, 1) else { throw .backend(code: -1) }
        self.context = context
        self.cmAuthentication = nil
        self.allowRepeatTransmission = allowRepeatTransmission
        withUnsafeMutableBytes(of: &salt) { $0.copyBytes(from: sessionSalt) }
    }

    /// AES_CM_128_HMAC_SHA1_80 (RFC 3711 §4.1.1, §4.2): AES-128 in counter mode with IV = (salt ‖ 0x0000) XOR
    /// (SSRC · 2^64) XOR (index · 2^16), and an 80-bit HMAC-SHA1 tag over the packet and the ROC. Keys from the same
    /// PRF (labels 0x00 key, 0x01 authentication key of 20 bytes, 0x02 salt of 14 bytes).
    init(cmMasterKey masterKey: [UInt8], masterSalt: [UInt8], allowRepeatTransmission: Bool) throws(SRTPError) {
        let (sessionKey, authKey, sessionSalt) = try SRTPKeyDerivation.sessionKeys(
            masterKey: masterKey, masterSalt: masterSalt, saltLength: 14, authKeyLength: 20)
        guard let context = CCallsOpenSSL_ctr_context_new(sessionKey) else { throw .backend(code: -1) }
        guard let hmac = CCallsOpenSSL_hmac_sha1_new(authKey, 20) else {
            EVP_CIPHER_CTX_free(context)
            throw .backend(code: -1)
        }
        self.context = context
        self.cmAuthentication = OpaquePointer(hmac)
        self.allowRepeatTransmission = allowRepeatTransmission
        withUnsafeMutableBytes(of: &cmSalt) { $0.copyBytes(from: sessionSalt) }  // bytes 14, 15 stay zero
    }

    deinit {
        EVP_CIPHER_CTX_free(context)
        if let cmAuthentication { CCallsOpenSSL_hmac_sha1_free(UnsafeMutableRawPointer(cmAuthentication)) }
    }

    /// Bytes protect appends: 16 (GCM tag) or 10 (HMAC-SHA1-80).
    var trailerLength: Int { cmAuthentication == nil ? Self.tagLength : 10 }

    /// Protects the RTP packet in `buffer[0..<length]` in place; returns the new length (`length + 16`).
    /// `headerLength` is the RTP header's length (validated by the caller).
    func protect(_ buffer: UnsafeMutableRawBufferPointer, length: Int, headerLength: Int) throws(SRTPError) -> Int {
        guard buffer.count - length >= trailerLength, headerLength <= length else { throw .bufferTooSmall }
        let sequence = UInt16(buffer[2]) << 8 | UInt16(buffer[3])
        let ssrc = UInt32(buffer[8]) << 24 | UInt32(buffer[9]) << 16 | UInt32(buffer[10]) << 8 | UInt32(buffer[11])
        let index = try nextIndex(ssrc: ssrc, sequence: sequence)
        let roc = UInt32(truncatingIfNeeded: index >> 16)
        if let cmAuthentication {
            // IV = salt(14) ‖ 00 00, XOR SSRC at bytes 4–7, XOR the 48-bit index at bytes 8–13.
            var iv = cmSalt
            withUnsafeMutableBytes(of: &iv) { p in
                for k in 0..<4 { p[4 + k] ^= UInt8(truncatingIfNeeded: ssrc >> (24 - 8 * UInt32(k))) }
                for k in 0..<6 { p[8 + k] ^= UInt8(truncatingIfNeeded: index >> (40 - 8 * UInt64(k))) }
            }
            let result = withUnsafeBytes(of: &iv) { ivBytes in
                CCallsOpenSSL_srtp_cm_seal(
                    context, UnsafeRawPointer(cmAuthentication), ivBytes.baseAddress!.assumingMemoryBound(to: UInt8.self),
                    buffer.baseAddress!.assumingMemoryBound(to: UInt8.self), Int32(headerLength), Int32(length), roc, 10)
            }
            guard result == Int32(length + 10) else { throw .backend(code: -1) }
            commit(ssrc: ssrc, index: index)
            return Int(result)
        }
        // IV = salt XOR (00 00 | SSRC | ROC | SEQ), built in network byte order.
        var iv: (UInt32, UInt32, UInt32) = (0, 0, 0)
        withUnsafeMutableBytes(of: &iv) { p in
            p.storeBytes(of: UInt16(0).bigEndian, toByteOffset: 0, as: UInt16.self)
            p.storeBytes(of: ssrc.bigEndian, toByteOffset: 2, as: UInt32.self)
            p.storeBytes(of: roc.bigEndian, toByteOffset: 6, as: UInt32.self)
            p.storeBytes(of: sequence.bigEndian, toByteOffset: 10, as: UInt16.self)
        }
        iv.0 ^= salt.0
        iv.1 ^= salt.1
        iv.2 ^= salt.2
        let result = withUnsafeBytes(of: &iv) { ivBytes in
            CCallsOpenSSL_gcm_seal(
                context, ivBytes.baseAddress!.assumingMemoryBound(to: UInt8.self),
                buffer.baseAddress!.assumingMemoryBound(to: UInt8.self), Int32(headerLength), Int32(length))
        }
        guard result == Int32(length + Self.tagLength) else { throw .backend(code: -1) }
        commit(ssrc: ssrc, index: index)
        return Int(result)
    }

    /// The packet index of `sequence` on `ssrc` (RFC 3711 Appendix A guess against the highest index sent), after
    /// the repeat check.
    private func nextIndex(ssrc: UInt32, sequence: UInt16) throws(SRTPError) -> UInt64 {
        guard let state = streams[ssrc] else { return UInt64(sequence) }
        return try checked(estimateIndex(sequence: sequence, highest: state.highest), state)
    }

    private func checked(_ index: UInt64, _ state: StreamState) throws(SRTPError) -> UInt64 {
        guard !allowRepeatTransmission, index <= state.highest else { return index }
        let behind = state.highest - index
        guard behind < 64 else { throw .tooOld }
        guard state.window & (1 << behind) == 0 else { throw .replayed }
        return index
    }

    private func commit(ssrc: UInt32, index: UInt64) {
        guard var state = streams[ssrc] else {
            streams[ssrc] = StreamState(highest: index, window: 1)
            return
        }
        if index > state.highest {
            let shift = index - state.highest
            state.window = shift >= 64 ? 1 : (state.window << shift) | 1
            state.highest = index
        } else {
            let behind = state.highest - index
            if behind < 64 { state.window |= 1 << behind }
        }
        streams[ssrc] = state
    }
}

@available(*, unavailable)
extension OpenSSLGCMProtector: Sendable {}

/// SRTP unprotect of RTP packets with AEAD_AES_128_GCM (RFC 7714) over OpenSSL EVP, for `SRTPSession`'s inbound
/// direction: the mirror of `OpenSSLGCMProtector`, with libsrtp2's replay protection (RFC 3711 §3.3.2): per SSRC, the
/// highest authenticated index and a 128-packet window behind it. Only packets that authenticate move the window.
///
/// Not thread-safe: confined to its `SRTPSession`'s owner.
final class OpenSSLGCMUnprotector {
    private let context: OpaquePointer  // EVP_CIPHER_CTX *
    private var salt: (UInt32, UInt32, UInt32) = (0, 0, 0)
    /// AES_CM_128_HMAC_SHA1_80 instead of GCM (see `OpenSSLGCMProtector.init(cmMasterKey:masterSalt:...)`).
    private let cmAuthentication: OpaquePointer?
    private var cmSalt: (UInt64, UInt64) = (0, 0)
    private var streams: [UInt32: ReplayWindow] = [:]

    /// The highest index received on one SSRC and which of the 128 before it were received.
    private struct ReplayWindow {
        var highest: UInt64
        /// Bit i of (low, high) = index `highest - i` (low: i < 64, high: 64 ≤ i < 128).
        var low: UInt64
        var high: UInt64

        func contains(behind i: UInt64) -> Bool {
            i < 64 ? low & (1 << i) != 0 : high & (1 << (i - 64)) != 0
        }

        mutating func insert(_ index: UInt64) {
            if index > highest {
                let shift = index - highest
                if shift >= 128 {
                    low = 1
                    high = 0
                } else if shift >= 64 {
                    high = low << (shift - 64)
                    low = 1
                } else {
                    high = (high << shift) | (low >> (64 - shift))
                    low = (low << shift) | 1
                }
                highest = index
            } else {
                let i = highest - index
                if i < 64 { low |= 1 << i } else if i < 128 { high |= 1 << (i - 64) }
            }
        }
    }

    init(masterKey: [UInt8], masterSalt: [UInt8]) throws(SRTPError) {
        let (sessionKey, _, sessionSalt) = try SRTPKeyDerivation.sessionKeys(
            masterKey: masterKey, masterSalt: masterSalt, saltLength: 12, authKeyLength: 0)
        guard let context = CCallsOpenSSL_gcm_context_new(sessionKey, 0) else { throw .backend(code: -1) }
        self.context = context
        self.cmAuthentication = nil
        withUnsafeMutableBytes(of: &salt) { $0.copyBytes(from: sessionSalt) }
    }

    init(cmMasterKey masterKey: [UInt8], masterSalt: [UInt8]) throws(SRTPError) {
        let (sessionKey, authKey, sessionSalt) = try SRTPKeyDerivation.sessionKeys(
            masterKey: masterKey, masterSalt: masterSalt, saltLength: 14, authKeyLength: 20)
        guard let context = CCallsOpenSSL_ctr_context_new(sessionKey) else { throw .backend(code: -1) }
        guard let hmac = CCallsOpenSSL_hmac_sha1_new(authKey, 20) else {
            EVP_CIPHER_CTX_free(context)
            throw .backend(code: -1)
        }
        self.context = context
        self.cmAuthentication = OpaquePointer(hmac)
        withUnsafeMutableBytes(of: &cmSalt) { $0.copyBytes(from: sessionSalt) }
    }

    deinit {
        EVP_CIPHER_CTX_free(context)
        if let cmAuthentication { CCallsOpenSSL_hmac_sha1_free(UnsafeMutableRawPointer(cmAuthentication)) }
    }

    /// Unprotects the SRTP packet in `buffer[0..<length]` in place; returns the plain length (`length - 16`).
    func unprotect(_ buffer: UnsafeMutableRawBufferPointer, length: Int, headerLength: Int) throws(SRTPError) -> Int {
        let tagLength = cmAuthentication == nil ? OpenSSLGCMProtector.tagLength : 10
        guard length >= headerLength + tagLength else { throw .malformedPacket }
        let sequence = UInt16(buffer[2]) << 8 | UInt16(buffer[3])
        let ssrc = UInt32(buffer[8]) << 24 | UInt32(buffer[9]) << 16 | UInt32(buffer[10]) << 8 | UInt32(buffer[11])
        let window = streams[ssrc]
        let index = window.map { estimateIndex(sequence: sequence, highest: $0.highest) } ?? UInt64(sequence)
        if let window, index <= window.highest {
            let behind = window.highest - index
            guard behind < 128 else { throw .tooOld }
            guard !window.contains(behind: behind) else { throw .replayed }
        }
        let roc = UInt32(truncatingIfNeeded: index >> 16)
        let result: Int32
        if let cmAuthentication {
            var iv = cmSalt
            withUnsafeMutableBytes(of: &iv) { p in
                for k in 0..<4 { p[4 + k] ^= UInt8(truncatingIfNeeded: ssrc >> (24 - 8 * UInt32(k))) }
                for k in 0..<6 { p[8 + k] ^= UInt8(truncatingIfNeeded: index >> (40 - 8 * UInt64(k))) }
            }
            result = withUnsafeBytes(of: &iv) { ivBytes in
                CCallsOpenSSL_srtp_cm_open(
                    context, UnsafeRawPointer(cmAuthentication), ivBytes.baseAddress!.assumingMemoryBound(to: UInt8.self),
                    buffer.baseAddress!.assumingMemoryBound(to: UInt8.self), Int32(headerLength), Int32(length), roc, 10)
            }
        } else {
            result = gcmOpen(buffer, length: length, headerLength: headerLength, ssrc: ssrc, roc: roc, sequence: sequence)
        }
        guard result >= 0 else { throw .authenticationFailed }
        if var window {
            window.insert(index)
            streams[ssrc] = window
        } else {
            streams[ssrc] = ReplayWindow(highest: index, low: 1, high: 0)
        }
        return Int(result)
    }

    private func gcmOpen(
        _ buffer: UnsafeMutableRawBufferPointer, length: Int, headerLength: Int, ssrc: UInt32, roc: UInt32,
        sequence: UInt16
    ) -> Int32 {
        var iv: (UInt32, UInt32, UInt32) = (0, 0, 0)
        withUnsafeMutableBytes(of: &iv) { p in
            p.storeBytes(of: UInt16(0).bigEndian, toByteOffset: 0, as: UInt16.self)
            p.storeBytes(of: ssrc.bigEndian, toByteOffset: 2, as: UInt32.self)
            p.storeBytes(of: roc.bigEndian, toByteOffset: 6, as: UInt32.self)
            p.storeBytes(of: sequence.bigEndian, toByteOffset: 10, as: UInt16.self)
        }
        iv.0 ^= salt.0
        iv.1 ^= salt.1
        iv.2 ^= salt.2
        return withUnsafeBytes(of: &iv) { ivBytes in
            CCallsOpenSSL_gcm_open(
                context, ivBytes.baseAddress!.assumingMemoryBound(to: UInt8.self),
                buffer.baseAddress!.assumingMemoryBound(to: UInt8.self), Int32(headerLength), Int32(length))
        }
    }
}

@available(*, unavailable)
extension OpenSSLGCMUnprotector: Sendable {}

/// RFC 3711 Appendix A: the packet index of `sequence` given the highest index so far (as libsrtp2 does, the ROC is
/// taken as 0 while that index is below 2^15).
func estimateIndex(sequence: UInt16, highest: UInt64) -> UInt64 {
    guard highest > 0x8000 else { return UInt64(sequence) }
    let localROC = highest >> 16
    let localSeq = UInt16(truncatingIfNeeded: highest)
    var roc = localROC
    if localSeq < 0x8000 {
        if sequence > localSeq, sequence - localSeq > 0x8000, localROC > 0 { roc = localROC - 1 }
    } else {
        if localSeq - 0x8000 > sequence { roc = localROC + 1 }
    }
    return roc << 16 | UInt64(sequence)
}

/// The SRTP key derivation (RFC 3711 §4.3.1, AES-128 PRF) shared by both profiles and both directions: the session
/// encryption key (label 0x00), the authentication key (label 0x01, only for AES-CM) and the session salt (0x02).
enum SRTPKeyDerivation {
    static func sessionKeys(masterKey: [UInt8], masterSalt: [UInt8], saltLength: Int, authKeyLength: Int)
        throws(SRTPError) -> (key: [UInt8], authKey: [UInt8], salt: [UInt8])
    {
        guard masterKey.count == 16, masterSalt.count == saltLength else { throw .invalidKey }
        var key = [UInt8](repeating: 0, count: 16)
        var authKey = [UInt8](repeating: 0, count: authKeyLength)
        var salt = [UInt8](repeating: 0, count: saltLength)
        let ok = masterKey.withUnsafeBufferPointer { k in
            masterSalt.withUnsafeBufferPointer { s in
                CCallsOpenSSL_srtp_kdf_aes128(k.baseAddress, s.baseAddress, Int32(saltLength), 0x00, &key, 16) == 1
                    && (authKeyLength == 0
                        || CCallsOpenSSL_srtp_kdf_aes128(
                            k.baseAddress, s.baseAddress, Int32(saltLength), 0x01, &authKey, Int32(authKeyLength)) == 1)
                    && CCallsOpenSSL_srtp_kdf_aes128(
                        k.baseAddress, s.baseAddress, Int32(saltLength), 0x02, &salt, Int32(saltLength)) == 1
            }
        }
        guard ok else { throw .backend(code: -1) }
        return (key, authKey, salt)
    }
}
