internal import CCallsOpenSSL
internal import CCallsSRTP

/// The system cryptography libraries the media server is built on, as linked at run time.
public enum MediaLibraries {
    /// OpenSSL's own version string, for example `OpenSSL 3.0.17 1 Jul 2025`.
    public static var openSSLVersion: String {
        String(cString: CCallsOpenSSL_version_string())
    }

    /// libsrtp's version string, for example `libsrtp2 2.5.0`.
    public static var srtpVersion: String {
        String(cString: srtp_get_version_string())
    }

    /// Initialises libsrtp2 once per process. Returns false when the library refuses to start.
    public static func initializeSRTP() -> Bool {
        srtpInitialized
    }

    private static let srtpInitialized: Bool = {
        srtp_init() == srtp_err_status_ok
    }()
}
