import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Why files were not written.
public struct WriteError: Error, Sendable, Equatable, CustomStringConvertible {
    public let message: String
    /// Files that already exist (when that was the reason).
    public let existing: [String]

    public init(_ message: String, existing: [String] = []) {
        self.message = message
        self.existing = existing
    }

    public var description: String { message }
}

/// Writes generated files into a folder all or nothing: everything goes to a temporary folder beside
/// the targets first, then each file is renamed into place. Existing files are kept unless `force`.
public enum BundleWriter {
    /// - Returns: the paths written, relative to `directory`.
    @discardableResult
    public static func write(_ files: [GeneratedFile], to directory: String, force: Bool) throws(WriteError) -> [String] {
        let fm = FileManager.default
        let root = (directory as NSString).standardizingPath
        var isDir: ObjCBool = false
        if fm.fileExists(atPath: root, isDirectory: &isDir), !isDir.boolValue {
            throw WriteError("\(root) is a file, not a folder; give --out a folder path.")
        }
        let existing = files.map(\.path).filter { fm.fileExists(atPath: (root as NSString).appendingPathComponent($0)) }
        if !existing.isEmpty && !force {
            throw WriteError(
                "\(existing.count) file(s) already exist in \(root): \(existing.joined(separator: ", ")); nothing was written. Use --force to overwrite them, or choose another --out folder.",
                existing: existing)
        }
        do {
            try fm.createDirectory(atPath: root, withIntermediateDirectories: true)
        } catch {
            throw WriteError("cannot create the folder \(root): \(error.localizedDescription)")
        }
        let staging = (root as NSString).appendingPathComponent(".callsctl-generate-\(UUID().uuidString)")
        defer { try? fm.removeItem(atPath: staging) }
        for file in files {
            let path = (staging as NSString).appendingPathComponent(file.path)
            try makeParent(of: path)
            try writeFile(path: path, contents: file.contents, mode: file.mode)
        }
        // Folders made here that hold only secret files (secrets/) get mode 0700, like their files.
        let topFolders = Set(files.compactMap { $0.path.contains("/") ? String($0.path.prefix { $0 != "/" }) : nil })
        let privateFolders = topFolders.filter { folder in
            !fm.fileExists(atPath: (root as NSString).appendingPathComponent(folder))
                && files.filter { $0.path.hasPrefix(folder + "/") }.allSatisfy { $0.mode & 0o077 == 0 }
        }
        for file in files {
            let target = (root as NSString).appendingPathComponent(file.path)
            try makeParent(of: target)
            let source = (staging as NSString).appendingPathComponent(file.path)
            if rename(source, target) != 0 {
                throw WriteError("cannot move \(file.path) into \(root): \(String(cString: strerror(errno)))")
            }
        }
        for folder in privateFolders { chmod((root as NSString).appendingPathComponent(folder), 0o700) }
        return files.map(\.path)
    }

    private static func makeParent(of path: String) throws(WriteError) {
        let parent = (path as NSString).deletingLastPathComponent
        do {
            try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
        } catch {
            throw WriteError("cannot create the folder \(parent): \(error.localizedDescription)")
        }
    }

    /// Creates the file with its final mode from the start, so a secret is never readable by others.
    private static func writeFile(path: String, contents: String, mode: Int) throws(WriteError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode_t(mode))
        guard fd >= 0 else { throw WriteError("cannot create \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        // The umask may have removed bits (e.g. 0o700 scripts); set the mode exactly.
        fchmod(fd, mode_t(mode))
        let bytes = Array(contents.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, bytes.count - offset) }
            if n < 0 {
                if errno == EINTR { continue }
                throw WriteError("cannot write \(path): \(String(cString: strerror(errno)))")
            }
            offset += n
        }
        if fsync(fd) != 0 { throw WriteError("cannot write \(path): \(String(cString: strerror(errno)))") }
    }
}
