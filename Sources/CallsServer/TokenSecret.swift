import Crypto
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The secret that signs join tokens: a file holding 32 random bytes in base64.
///
/// The default file is `token-secret` in the data directory, created with mode 0600 on first use and
/// never overwritten. `serve` and `token create` read the same file, so tokens made by one are
/// accepted by the other.
public struct TokenSecret: Sendable {
    public static let defaultFileName = "token-secret"
    /// Bytes of a generated secret.
    public static let generatedLength = 32
    /// The shortest secret accepted from a file.
    public static let minimumLength = 16

    /// The HMAC key.
    public let bytes: [UInt8]
    /// Where it was read from.
    public let path: String
    /// True when this call generated the file.
    public let created: Bool
    /// Problems worth telling the operator (for example a world-readable file).
    public let warnings: [String]

    /// Reads `path`, or, when `create` is true and the file does not exist, generates it (mode 0600).
    /// - Throws: ``TokenSecretError`` naming the file and how to fix it.
    public static func load(path: String, create: Bool) throws(TokenSecretError) -> TokenSecret {
        if create && !FileManager.default.fileExists(atPath: path) {
            try generate(path: path)
            var secret = try read(path: path)
            secret = TokenSecret(bytes: secret.bytes, path: path, created: true, warnings: secret.warnings)
            return secret
        }
        return try read(path: path)
    }

    static let naming = PrivateFile.Naming(what: "token secret", flag: "--token-secret-file", exposure: "create join tokens")

    /// The default file in `dataDir`, generated on first use.
    public static func loadDefault(dataDir: String) throws(TokenSecretError) -> TokenSecret {
        try PrivateFile.ensureDirectory(dataDir)
        return try load(path: (dataDir as NSString).appendingPathComponent(defaultFileName), create: true)
    }

    private static func generate(path: String) throws(TokenSecretError) {
        let text = Data(PrivateFile.randomBytes(generatedLength)).base64EncodedString() + "\n"
        // false: another process won the race; its secret is read back like any other.
        _ = try PrivateFile.create(path: path, text: text, naming: naming)
    }

    private static func read(path: String) throws(TokenSecretError) -> TokenSecret {
        let (text, warnings) = try PrivateFile.read(path: path, naming: naming)
        guard let bytes = Data(base64Encoded: text).map(Array.init), bytes.count >= minimumLength else {
            throw TokenSecretError(
                "the token secret \(path) must hold at least \(minimumLength) bytes in base64 (generate one with `head -c 32 /dev/urandom | base64`); it holds \(text.isEmpty ? "nothing" : "something else")."
            )
        }
        return TokenSecret(bytes: bytes, path: path, created: false, warnings: warnings)
    }

    /// A signer for this secret.
    public var signer: JoinTokenSigner { JoinTokenSigner(secret: bytes) }
}

/// The token secret could not be read or created.
public struct TokenSecretError: Error, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
