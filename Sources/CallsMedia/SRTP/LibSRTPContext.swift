internal import CCallsSRTP

/// Owns one libsrtp2 session (`srtp_t`) and deallocates it in `deinit`.
///
/// Not thread-safe (libsrtp contexts keep per-stream replay and rollover state): confined to its owner.
final class LibSRTPContext {
    let pointer: OpaquePointer  // srtp_t

    /// Creates a session with one wildcard-SSRC stream policy.
    /// - Parameters:
    ///   - direction: `ssrc_any_inbound` (unprotect) or `ssrc_any_outbound` (protect).
    ///   - masterKey: key followed by salt, `profile.keyLength + profile.saltLength` bytes.
    init(
        profile: SRTPProtectionProfile,
        direction: srtp_ssrc_type_t,
        masterKey: [UInt8],
        allowRepeatTransmission: Bool
    ) throws(SRTPError) {
        guard masterKey.count == profile.keyLength + profile.saltLength else { throw .invalidKey }
        var policy = srtp_policy_t()
        switch profile {
        case .aeadAES128GCM:
            srtp_crypto_policy_set_aes_gcm_128_16_auth(&policy.rtp)
            srtp_crypto_policy_set_aes_gcm_128_16_auth(&policy.rtcp)
        case .aes128CMHMACSHA1_80:
            srtp_crypto_policy_set_rtp_default(&policy.rtp)
            srtp_crypto_policy_set_rtcp_default(&policy.rtcp)
        default:
            throw .invalidKey
        }
        policy.ssrc.type = direction
        policy.ssrc.value = 0
        policy.window_size = 0  // 0 selects libsrtp's default replay window (128 packets)
        policy.allow_repeat_tx = allowRepeatTransmission ? 1 : 0
        policy.next = nil
        var key = masterKey
        var session: OpaquePointer? = nil
        let status = key.withUnsafeMutableBufferPointer { keyBytes in
            policy.key = keyBytes.baseAddress
            return srtp_create(&session, &policy)  // copies the key into the session
        }
        guard status == srtp_err_status_ok, let session else {
            throw status == srtp_err_status_ok ? .backend(code: -1) : .backend(code: Int32(status.rawValue))
        }
        pointer = session
    }

    deinit {
        srtp_dealloc(pointer)
    }
}

@available(*, unavailable)
extension LibSRTPContext: Sendable {}

/// Process-wide libsrtp2 state: `srtp_init` once, plus one session that lives as long as the process.
enum LibSRTPLibrary {
    /// True once libsrtp is initialised and the keep-alive session exists.
    static var isReady: Bool { keepAlive != nil }

    /// Why a dummy session is kept alive: Debian builds libsrtp2 2.5.0 against NSS, and libsrtp initialises NSS
    /// when the first cipher is allocated and shuts it down again when the last one is freed. Without a
    /// session that outlives all others, every `srtp_create` in a quiet process paid NSS start-up again
    /// (about 0.6 ms measured, against 10–15 µs with this session alive). It holds a zero key, is never used to
    /// protect anything, and is never freed.
    private static let keepAlive: KeepAliveSession? = {
        guard MediaLibraries.initializeSRTP() else { return nil }
        let profile = SRTPProtectionProfile.aeadAES128GCM
        let zeroKey = [UInt8](repeating: 0, count: profile.keyLength + profile.saltLength)
        guard
            let context = try? LibSRTPContext(
                profile: profile, direction: ssrc_any_outbound, masterKey: zeroKey, allowRepeatTransmission: false)
        else { return nil }
        return KeepAliveSession(context: context)
    }()
}

/// The never-used session held by `LibSRTPLibrary.keepAlive`.
// Sendable because the wrapped context is never touched after creation: nothing reads or mutates it, it only
// has to stay allocated.
private final class KeepAliveSession: @unchecked Sendable {
    private let context: LibSRTPContext

    init(context: LibSRTPContext) {
        self.context = context
    }
}
