/// Protects outgoing and unprotects incoming RTP and RTCP packets of one DTLS-SRTP association.
///
/// All four operations work in place: the packet occupies the first `length` bytes of `buffer`, and the new length
/// is returned. Protect appends a tag (and, for RTCP, the SRTCP index), so `buffer` must have at least
/// `SRTPSession.maxTrailerLength` (RTP) or `SRTPSession.maxRTCPTrailerLength` (RTCP) spare bytes after the packet.
/// Errors never leave the transform unusable: drop the packet and carry on.
///
/// The protocol keeps the backend replaceable (`SRTPSession` runs RTP on OpenSSL EVP and SRTCP on libsrtp2; see
/// docs/performance.md). Implementations are not thread-safe: confine an instance to one event loop.
public protocol SRTPTransform: AnyObject {
    /// The negotiated protection profile.
    var profile: SRTPProtectionProfile { get }

    func protectRTP(_ buffer: UnsafeMutableRawBufferPointer, length: Int) throws(SRTPError) -> Int
    func unprotectRTP(_ buffer: UnsafeMutableRawBufferPointer, length: Int) throws(SRTPError) -> Int
    func protectRTCP(_ buffer: UnsafeMutableRawBufferPointer, length: Int) throws(SRTPError) -> Int
    func unprotectRTCP(_ buffer: UnsafeMutableRawBufferPointer, length: Int) throws(SRTPError) -> Int
}

extension SRTPTransform {
    /// Protects the RTP packet in `packet`, growing it by the tag. Reserve `count + maxTrailerLength` capacity
    /// beforehand to avoid a reallocation.
    public func protectRTP(_ packet: inout [UInt8]) throws(SRTPError) {
        try transform(&packet, spare: SRTPSession.maxTrailerLength) { (buffer, length) throws(SRTPError) in
            try self.protectRTP(buffer, length: length)
        }
    }

    /// Unprotects the SRTP packet in `packet`, shrinking it to the plain RTP packet.
    public func unprotectRTP(_ packet: inout [UInt8]) throws(SRTPError) {
        try transform(&packet, spare: 0) { (buffer, length) throws(SRTPError) in
            try self.unprotectRTP(buffer, length: length)
        }
    }

    /// Protects the RTCP compound packet in `packet`, appending the SRTCP index and tag.
    public func protectRTCP(_ packet: inout [UInt8]) throws(SRTPError) {
        try transform(&packet, spare: SRTPSession.maxRTCPTrailerLength) { (buffer, length) throws(SRTPError) in
            try self.protectRTCP(buffer, length: length)
        }
    }

    /// Unprotects the SRTCP packet in `packet`, shrinking it to the plain RTCP compound packet.
    public func unprotectRTCP(_ packet: inout [UInt8]) throws(SRTPError) {
        try transform(&packet, spare: 0) { (buffer, length) throws(SRTPError) in
            try self.unprotectRTCP(buffer, length: length)
        }
    }
}

/// Runs `body` on `packet`'s bytes with `spare` extra zero bytes behind them, then trims to the returned length.
/// On error the packet is restored to its original length (its bytes may have been changed).
private func transform(
    _ packet: inout [UInt8],
    spare: Int,
    _ body: (UnsafeMutableRawBufferPointer, Int) throws(SRTPError) -> Int
) throws(SRTPError) {
    let length = packet.count
    if spare > 0 { packet.append(contentsOf: repeatElement(0, count: spare)) }
    let result: Result<Int, SRTPError> = packet.withUnsafeMutableBytes { buffer in
        do throws(SRTPError) {
            return .success(try body(buffer, length))
        } catch {
            return .failure(error)
        }
    }
    switch result {
    case .success(let newLength):
        packet.removeLast(packet.count - newLength)
    case .failure(let error):
        packet.removeLast(packet.count - length)
        throw error
    }
}
