// Fuzz-only stand-in for CallsMedia's DTLSError, whose real definition imports the system OpenSSL (to read its
// error queue). DTLSTypes.swift only needs the type and `.invalidConfiguration` to compile; the record demux code
// being fuzzed (DTLSRecordFilter, DTLSRecordPacker) never creates one.
public struct DTLSError: Error, Hashable, Sendable {
    public enum Code: Hashable, Sendable { case invalidConfiguration }
    public let code: Code
    public let message: String
    init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }
}
