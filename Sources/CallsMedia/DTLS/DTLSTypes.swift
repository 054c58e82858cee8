/// Which side of the DTLS handshake an endpoint plays. In WebRTC the SDP `a=setup` attribute decides: the
/// `callsctl` SFU answers `a=setup:passive` and is the server; the project's own client is the client.
public enum DTLSRole: Hashable, Sendable {
    case client
    case server
}

/// Per-endpoint DTLS settings.
public struct DTLSConfiguration: Sendable {
    /// The largest datagram the endpoint emits, in bytes (DTLS records only; the caller adds UDP/IP). OpenSSL
    /// refuses values below 256. Default 1200, safe for WebRTC paths including TURN and IPv6.
    public var mtu: Int
    /// SRTP profiles offered (client) or accepted (server), most preferred first. The server picks the first
    /// profile of its own list that the client also offers.
    public var srtpProfiles: [SRTPProtectionProfile]
    /// The first retransmission timeout; later ones double up to 60 s. RFC 6347 recommends 1 s (the default);
    /// smaller values speed up recovery from a lost first flight on lossy links (and in tests).
    public var initialRetransmitTimeout: Duration

    public init(
        mtu: Int = 1200,
        srtpProfiles: [SRTPProtectionProfile] = SRTPProtectionProfile.allSupported,
        initialRetransmitTimeout: Duration = .seconds(1)
    ) {
        self.mtu = mtu
        self.srtpProfiles = srtpProfiles
        self.initialRetransmitTimeout = initialRetransmitTimeout
    }

    func validate() throws(DTLSError) {
        guard (256...65_507).contains(mtu) else {
            throw DTLSError(
                .invalidConfiguration, "mtu \(mtu) is outside 256...65507 (OpenSSL's DTLS minimum to UDP's maximum)")
        }
        guard !srtpProfiles.isEmpty else {
            throw DTLSError(.invalidConfiguration, "srtpProfiles is empty; offer at least one SRTP profile")
        }
        guard initialRetransmitTimeout >= .milliseconds(1), initialRetransmitTimeout <= .seconds(60) else {
            throw DTLSError(
                .invalidConfiguration, "initialRetransmitTimeout \(initialRetransmitTimeout) is outside 1 ms...60 s")
        }
    }
}

/// Something that happened while processing input or a timeout.
public enum DTLSEvent: Sendable {
    /// The handshake finished, the peer's fingerprint matched, and SRTP keys were derived. Reported once.
    case handshakeComplete(SRTPKeyingMaterial)
    /// The association failed for good; the endpoint ignores further input. Reported once.
    case failed(DTLSError)
    /// Application data (for WebRTC, SCTP packets of data channels) decrypted from the peer.
    case applicationData([UInt8])
    /// The peer closed the association with close_notify.
    case closed
}

/// What one call into a `DTLSEndpoint` produced: datagrams to send to the peer, in order, each at most the
/// configured MTU, and events.
public struct DTLSOutput: Sendable {
    public var datagrams: [[UInt8]]
    public var events: [DTLSEvent]

    public init(datagrams: [[UInt8]] = [], events: [DTLSEvent] = []) {
        self.datagrams = datagrams
        self.events = events
    }
}

/// Splits the bytes OpenSSL wrote into a memory BIO back into datagrams.
///
/// A memory BIO concatenates writes, so datagram boundaries are lost. Each DTLS record carries its length
/// (RFC 6347 §4.1: 13-byte header, length in bytes 11–12), and OpenSSL sizes records to the MTU, so whole records
/// are packed greedily into datagrams of at most `mtu` bytes. A record is never split (DTLS cannot reassemble
/// one); a record longer than the MTU, which OpenSSL does not produce with the MTU set, goes out alone.
enum DTLSRecordPacker {
    static let recordHeaderLength = 13

    static func pack(_ bytes: some RandomAccessCollection<UInt8>, mtu: Int, into datagrams: inout [[UInt8]]) {
        var current: [UInt8] = []
        var offset = bytes.startIndex
        while offset != bytes.endIndex {
            let remaining = bytes.distance(from: offset, to: bytes.endIndex)
            var recordLength = remaining
            if remaining >= recordHeaderLength {
                let high = bytes[bytes.index(offset, offsetBy: 11)]
                let low = bytes[bytes.index(offset, offsetBy: 12)]
                recordLength = min(recordHeaderLength + (Int(high) << 8 | Int(low)), remaining)
            }
            if !current.isEmpty, current.count + recordLength > mtu {
                datagrams.append(current)
                current = []
            }
            let end = bytes.index(offset, offsetBy: recordLength)
            current.append(contentsOf: bytes[offset..<end])
            offset = end
        }
        if !current.isEmpty { datagrams.append(current) }
    }
}

/// Removes records OpenSSL 3.0 would fail the whole association on, before OpenSSL sees them.
///
/// RFC 6347 §4.1.2.7 says invalid DTLS records are silently discarded, and OpenSSL does that for a forged record
/// of plausible length. But an encrypted record (epoch above 0) shorter than the cipher's fixed overhead (explicit
/// nonce plus tag: 24 bytes for AES-GCM, 16 for ChaCha20-Poly1305) makes `SSL_read`/`SSL_do_handshake` return -1
/// with SSL_ERROR_SYSCALL and an empty error queue (measured with OpenSSL 3.0.x), ending the association. Anyone who
/// can spoof the peer's address could then tear it down with one 14-byte datagram. Such records cannot be valid,
/// so dropping them here changes nothing for a genuine peer.
enum DTLSRecordFilter {
    enum Result {
        /// Every record may be handed to OpenSSL as received.
        case unchanged
        /// Some records were dropped; these are the remaining bytes (possibly empty).
        case filtered([UInt8])
    }

    static func filter(_ datagram: UnsafeRawBufferPointer, minimumCiphertextLength: Int) -> Result {
        let header = DTLSRecordPacker.recordHeaderLength
        var keep: [Range<Int>] = []
        var dropped = false
        var offset = 0
        while datagram.count - offset >= header {
            let epoch = Int(datagram[offset + 3]) << 8 | Int(datagram[offset + 4])
            let length = Int(datagram[offset + 11]) << 8 | Int(datagram[offset + 12])
            let end = min(offset + header + length, datagram.count)
            if epoch != 0, length < minimumCiphertextLength {
                dropped = true
            } else {
                keep.append(offset..<end)
            }
            offset = end
        }
        if offset < datagram.count { keep.append(offset..<datagram.count) }  // a torn header: OpenSSL drops it
        guard dropped else { return .unchanged }
        var bytes: [UInt8] = []
        for range in keep { bytes.append(contentsOf: datagram[range]) }
        return .filtered(bytes)
    }
}
