// Atomic file writes (temp file + fsync + rename) so a crash never leaves half a file behind.
import FoundationEssentials

#if canImport(Glibc)
    import Glibc
#endif

public enum AtomicFile {
    /// Writes `data` to `path` atomically with the given permissions. With `exclusive`, fails with
    /// EEXIST when `path` already exists (link instead of rename, so two writers cannot both win).
    /// With `durable` false the file and folder are not fsynced: still all-or-nothing if sevvm
    /// dies, but not across a power loss; for runtime state, which a reboot makes moot anyway.
    public static func write(
        _ data: Data, to path: String, permissions: mode_t = 0o644, exclusive: Bool = false, durable: Bool = true
    ) throws {
        let directory = path.parentPath
        let base = path.fileName
        var template = Array(((directory.isEmpty ? "." : directory) + "/.\(base).tmp-XXXXXX").utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { buffer in buffer.baseAddress.map { mkstemp($0) } ?? -1 }
        guard fd >= 0 else { throw SupportError.io(path: path, operation: "create a temporary file for", errno: errno) }
        let tempPath = String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
        var committed = false
        defer {
            if !committed { unlink(tempPath) }
        }
        do {
            defer { close(fd) }
            let failure = data.withUnsafeBytes { DescriptorIO.writeAll($0, to: fd) }
            guard failure == 0 else { throw SupportError.io(path: path, operation: "write", errno: failure) }
            guard fchmod(fd, permissions) == 0 else { throw SupportError.io(path: path, operation: "chmod", errno: errno) }
            if durable {
                guard fsync(fd) == 0 else { throw SupportError.io(path: path, operation: "fsync", errno: errno) }
            }
        }
        if exclusive {
            guard link(tempPath, path) == 0 else { throw SupportError.io(path: path, operation: "create", errno: errno) }
        } else {
            guard rename(tempPath, path) == 0 else { throw SupportError.io(path: path, operation: "rename onto", errno: errno) }
            committed = true
        }
        if durable { syncDirectory(directory.isEmpty ? "." : directory) }
    }

    public static func write(_ text: String, to path: String, permissions: mode_t = 0o644, exclusive: Bool = false) throws {
        try write(Data(text.utf8), to: path, permissions: permissions, exclusive: exclusive)
    }

    /// Creates `path` and its parents with `permissions` (applied to the last component even if it existed).
    public static func makeDirectory(_ path: String, permissions: mode_t = 0o755) throws {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw SupportError.io(path: path, operation: "create directory", errno: EACCES)
        }
        guard chmod(path, permissions) == 0 else { throw SupportError.io(path: path, operation: "chmod", errno: errno) }
    }

    private static func syncDirectory(_ directory: String) {
        let fd = open(directory, O_RDONLY | O_DIRECTORY)
        if fd >= 0 {
            fsync(fd)
            close(fd)
        }
    }
}
