/// Why an SRTP or SRTCP packet could not be protected or unprotected.
///
/// Every case is an expected outcome on the data path (a forged, damaged, replayed or truncated packet), so a
/// caller counts and drops the packet; none of them means the session is broken.
public enum SRTPError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The authentication tag did not verify: a damaged or forged packet, or the wrong key.
    case authenticationFailed
    /// The packet index was already received (or, on protect, already sent): replay protection dropped it.
    case replayed
    /// The packet index lies behind the replay window: too old to be checked, so dropped.
    case tooOld
    /// Not an RTP/RTCP packet this transform can process (too short, wrong version, header longer than the packet).
    case malformedPacket
    /// The caller's buffer lacks the spare room after the packet that protect needs
    /// (see `SRTPSession.maxTrailerLength`).
    case bufferTooSmall
    /// The keying material does not fit the profile, or the profile is not supported by this backend.
    case invalidKey
    /// libsrtp could not be initialised in this process.
    case libraryUnavailable
    /// Any other status from the backend, with its raw code (for libsrtp2, an `srtp_err_status_t` value).
    case backend(code: Int32)

    public var description: String {
        switch self {
        case .authenticationFailed: "SRTP authentication failed"
        case .replayed: "SRTP replay check failed (index already seen)"
        case .tooOld: "SRTP replay check failed (index older than the replay window)"
        case .malformedPacket: "not a valid RTP/RTCP packet"
        case .bufferTooSmall: "buffer lacks the spare room SRTP protect needs"
        case .invalidKey: "SRTP keying material does not fit the profile"
        case .libraryUnavailable: "libsrtp2 failed to initialise"
        case .backend(let code): "SRTP backend error \(code)"
        }
    }
}
