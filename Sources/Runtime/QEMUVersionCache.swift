// Remembers which QEMU discovery found and its version, so `start` does not run `qemu --version` every time.
import FoundationEssentials
import HostProbe
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// QEMU discovery runs `qemu-system-x86_64 --version`, a whole QEMU start-up (tens of ms) before the
/// real one. The answer is kept in run/qemu-discovery.json and reused while the inputs (explicit path,
/// PATH, whether the workspace has its own build) and the binary itself (size, mtime, inode) are unchanged.
enum QEMUVersionCache {
    struct Entry: Codable, Equatable {
        var explicitPath: String?
        var searchPath: String?
        var workspaceBuildExists: Bool
        var installation: QEMUInstallation
        var identity: [Int64]
    }

    static func installation(workspace: Workspace, explicitPath: String?) throws -> QEMUInstallation {
        let searchPath = ProcessInfo.processInfo.environment["PATH"]
        let workspaceBuild = workspace.installDirectory + "/bin/qemu-system-x86_64"
        let buildExists = access(workspaceBuild, X_OK) == 0
        let cacheFile = workspace.runDirectory + "/qemu-discovery.json"
        if let data = FileManager.default.contents(atPath: cacheFile),
            let entry = try? JSONDecoder().decode(Entry.self, from: data),
            entry.explicitPath == explicitPath, entry.searchPath == searchPath, entry.workspaceBuildExists == buildExists,
            let identity = identity(of: entry.installation.path), identity == entry.identity
        {
            return entry.installation
        }
        let installation = try QEMUDiscovery.find(workspace: workspace, explicitPath: explicitPath)
        if let identity = identity(of: installation.path) {
            let entry = Entry(
                explicitPath: explicitPath, searchPath: searchPath, workspaceBuildExists: buildExists, installation: installation,
                identity: identity)
            // A cache that cannot be written only costs time.
            try? AtomicFile.makeDirectory(workspace.runDirectory, permissions: 0o700)
            if let data = try? JSONEncoder().encode(entry) { try? AtomicFile.write(data, to: cacheFile, permissions: 0o600) }
        }
        return installation
    }

    /// Device, inode, size and modification time of the binary: any rebuild or upgrade changes them.
    static func identity(of path: String) -> [Int64]? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return [
            Int64(info.st_dev), Int64(info.st_ino), Int64(info.st_size), Int64(info.st_mtim.tv_sec), Int64(info.st_mtim.tv_nsec),
        ]
    }
}
