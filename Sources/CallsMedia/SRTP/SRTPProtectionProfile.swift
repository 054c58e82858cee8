/// An SRTP protection profile negotiated by the DTLS `use_srtp` extension (RFC 5764 §4.1.2, RFC 7714 §14.2).
///
/// The callsctl media path supports the two profiles WebRTC browsers offer: AEAD_AES_128_GCM (preferred: one
/// AES-GCM pass, cheaper with AES-NI) and AES128_CM_HMAC_SHA1_80 (mandatory to implement).
public struct SRTPProtectionProfile: Hashable, Sendable, CustomStringConvertible {
    /// The profile's IANA "DTLS-SRTP Protection Profiles" number, as `SSL_get_selected_srtp_profile` reports it.
    public let id: UInt16

    /// AEAD_AES_128_GCM (RFC 7714): 16-byte key, 12-byte salt, 16-byte tag.
    public static let aeadAES128GCM = SRTPProtectionProfile(id: 0x0007)
    /// SRTP_AES128_CM_HMAC_SHA1_80 (RFC 5764): 16-byte key, 14-byte salt, 10-byte HMAC-SHA1 tag.
    public static let aes128CMHMACSHA1_80 = SRTPProtectionProfile(id: 0x0001)

    /// Every profile this implementation can run, in preference order (GCM first).
    public static let allSupported: [SRTPProtectionProfile] = [.aeadAES128GCM, .aes128CMHMACSHA1_80]

    private init(id: UInt16) {
        self.id = id
    }

    /// The profile with IANA number `id`, or nil when callsctl does not implement it.
    public init?(ianaID id: UInt16) {
        switch id {
        case Self.aeadAES128GCM.id: self = .aeadAES128GCM
        case Self.aes128CMHMACSHA1_80.id: self = .aes128CMHMACSHA1_80
        default: return nil
        }
    }

    /// The master key length in bytes (16 for both supported profiles).
    public var keyLength: Int { 16 }

    /// The master salt length in bytes: 12 for AEAD_AES_128_GCM, 14 for AES-CM.
    public var saltLength: Int { self == .aeadAES128GCM ? 12 : 14 }

    /// The profile's name in OpenSSL's `SSL_CTX_set_tlsext_use_srtp` list syntax.
    var openSSLName: String {
        self == .aeadAES128GCM ? "SRTP_AEAD_AES_128_GCM" : "SRTP_AES128_CM_SHA1_80"
    }

    public var description: String {
        self == .aeadAES128GCM ? "AEAD_AES_128_GCM" : "AES128_CM_HMAC_SHA1_80"
    }
}

/// The SRTP master keys of one DTLS-SRTP association, already sorted by direction for this endpoint.
///
/// `local*` protects what this endpoint sends; `remote*` unprotects what it receives. The client's `local`
/// equals the server's `remote` and vice versa. `description` never prints key bytes.
public struct SRTPKeyingMaterial: Hashable, Sendable, CustomStringConvertible {
    public let profile: SRTPProtectionProfile
    public let localKey: [UInt8]
    public let localSalt: [UInt8]
    public let remoteKey: [UInt8]
    public let remoteSalt: [UInt8]

    /// - Precondition: key and salt lengths match `profile` (16-byte keys; 12-byte GCM or 14-byte AES-CM salts).
    public init(
        profile: SRTPProtectionProfile,
        localKey: [UInt8],
        localSalt: [UInt8],
        remoteKey: [UInt8],
        remoteSalt: [UInt8]
    ) {
        precondition(localKey.count == profile.keyLength && remoteKey.count == profile.keyLength, "SRTP key length")
        precondition(
            localSalt.count == profile.saltLength && remoteSalt.count == profile.saltLength, "SRTP salt length")
        self.profile = profile
        self.localKey = localKey
        self.localSalt = localSalt
        self.remoteKey = remoteKey
        self.remoteSalt = remoteSalt
    }

    /// The same keys seen from the other end of the association (local and remote swapped).
    public var swapped: SRTPKeyingMaterial {
        SRTPKeyingMaterial(
            profile: profile, localKey: remoteKey, localSalt: remoteSalt, remoteKey: localKey, remoteSalt: localSalt)
    }

    public var description: String { "SRTPKeyingMaterial(\(profile), keys redacted)" }
}
