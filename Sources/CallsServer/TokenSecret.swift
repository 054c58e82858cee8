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

    /// The default file in `dataDir`, generated on first use.
    public static func loadDefault(dataDir: String) throws(TokenSecretError) -> TokenSecret {
        do {
            try FileManager.default.createDirectory(
                atPath: dataDir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw TokenSecretError("cannot create the data directory \(dataDir): \(error.localizedDescription)")
        }
        return try load(path: (dataDir as NSString).appendingPathComponent(defaultFileName), create: true)
    }

    private static func generate(path: String) throws(TokenSecretError) {
        var key = [UInt8](repeating: 0, count: generatedLength)
        SymmetricKey(size: .bits256).withUnsafeBytes { raw in
            for i in 0..<min(raw.count, key.count) { key[i] = raw[i] }
        }
        let text = Data(key).base64EncodedString() + "\n"
        // O_EXCL: never overwrite a secret that appeared meanwhile (another process won the race).
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        if fd < 0 {
            let code = errno
            if code == EEXIST { return }
            throw TokenSecretError(
                "cannot create the token secret \(path): \(String(cString: strerror(code))). Check that the data directory is writable, or point --token-secret-file at an existing secret."
            )
        }
        defer { close(fd) }
        fchmod(fd, 0o600)
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        if written != bytes.count {
            let code = errno
            unlink(path)
            throw TokenSecretError("cannot write the token secret \(path): \(String(cString: strerror(code)))")
        }
        fsync(fd)
    }

    private static func read(path: String) throws(TokenSecretError) -> TokenSecret {
        var st = stat()
        guard stat(path, &st) == 0 else {
            let code = errno
            if code == ENOENT {
                throw TokenSecretError(
                    "the token secret file \(path) does not exist. Give an existing file with --token-secret-file (32 random bytes in base64: `head -c 32 /dev/urandom | base64 > FILE; chmod 600 FILE`), or leave the option out to use the one in the data directory."
                )
            }
            throw TokenSecretError("cannot read the token secret \(path): \(String(cString: strerror(code)))")
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            throw TokenSecretError("the token secret \(path) is not a regular file.")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TokenSecretError(
                "cannot read the token secret \(path): permission denied for this user (uid \(getuid())). Run as the file's owner, or fix its owner and mode (chmod 600)."
            )
        }
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard let bytes = Data(base64Encoded: text).map(Array.init), bytes.count >= minimumLength else {
            throw TokenSecretError(
                "the token secret \(path) must hold at least \(minimumLength) bytes in base64 (generate one with `head -c 32 /dev/urandom | base64`); it holds \(text.isEmpty ? "nothing" : "something else")."
            )
        }
        var warnings: [String] = []
        if st.st_mode & 0o077 != 0 {
            warnings.append(
                "the token secret \(path) can be read by other users (mode \(String(st.st_mode & 0o777, radix: 8))); anyone who reads it can create join tokens. Fix: chmod 600 \(path)"
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
