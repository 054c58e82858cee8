import CallsMedia
import Testing

/// Proves the two C targets link against the system libraries with real calls.
@Suite struct LibraryLinkTests {
    @Test func openSSLIsTheSystemLibrary() {
        let version = MediaLibraries.openSSLVersion
        #expect(version.hasPrefix("OpenSSL 3."), "got \(version)")
    }

    @Test func libsrtpInitialises() {
        #expect(MediaLibraries.initializeSRTP())
        #expect(MediaLibraries.srtpVersion.hasPrefix("libsrtp2 2."), "got \(MediaLibraries.srtpVersion)")
    }
}
