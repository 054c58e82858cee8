import Crypto
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A small secret file (the token secret, the admin key): created once with `O_EXCL` and mode 0600 and
/// never overwritten, read back with checks whose messages name the file and the fix.
enum PrivateFile {
    /// How messages name the file.
    struct Naming {
        /// "token secret", "admin key".
        let what: String
        /// The option that points at another file.
        let flag: String
        /// What someone who reads the file could do ("create join tokens").
        let exposure: String
    }

    static let makeOne = "head -c 32 /dev/urandom | base64 > FILE; chmod 600 FILE"

    static func randomBytes(_ count: Int) -> [UInt8] {
        var out = [UInt8]()
        while out.count < count {
            SymmetricKey(size: .bits256).withUnsafeBytes { out.append(contentsOf: $0.prefix(count - out.count)) }
        }
        return out
    }

    static func ensureDirectory(_ dataDir: String) throws(TokenSecretError) {
        do {
            try FileManager.default.createDirectory(
                atPath: dataDir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw TokenSecretError("cannot create the data directory \(dataDir): \(error.localizedDescription)")
        }
    }

    /// Writes `text` to a new file with mode 0600; false when another process created it meanwhile.
    static func create(path: String, text: String, naming: Naming) throws(TokenSecretError) -> Bool {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        if fd < 0 {
            let code = errno
            if code == EEXIST { return false }
            throw TokenSecretError(
                "cannot create the \(naming.what) \(path): \(String(cString: strerror(code))). Check that the data directory is writable, or point \(naming.flag) at an existing file."
            )
        }
        defer { close(fd) }
        fchmod(fd, 0o600)
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        if written != bytes.count {
            let code = errno
            unlink(path)
            throw TokenSecretError("cannot write the \(naming.what) \(path): \(String(cString: strerror(code)))")
        }
        fsync(fd)
        return true
    }

    /// The file's text, trimmed, and a warning when other users can read it.
    static func read(path: String, naming: Naming) throws(TokenSecretError) -> (text: String, warnings: [String]) {
        var st = stat()
        guard stat(path, &st) == 0 else {
            let code = errno
            if code == ENOENT {
                throw TokenSecretError(
                    "the \(naming.what) file \(path) does not exist. Give an existing file with \(naming.flag) (`\(makeOne)`), or leave the option out to use the one in the data directory."
                )
            }
            throw TokenSecretError("cannot read the \(naming.what) \(path): \(String(cString: strerror(code)))")
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            throw TokenSecretError("the \(naming.what) \(path) is not a regular file.")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TokenSecretError(
                "cannot read the \(naming.what) \(path): permission denied for this user (uid \(getuid())). Run as the file's owner, or fix its owner and mode (chmod 600)."
            )
        }
        var warnings: [String] = []
        if st.st_mode & 0o077 != 0 {
            warnings.append(
                "the \(naming.what) \(path) can be read by other users (mode \(String(st.st_mode & 0o777, radix: 8))); anyone who reads it can \(naming.exposure). Fix: chmod 600 \(path)"
            )
        }
        return (String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines), warnings)
    }
}
