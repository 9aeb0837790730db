// The workspace: the folder holding vms/, images/, stable-commits, and what sevvm creates beside them.
import FoundationEssentials

#if canImport(Glibc)
    import Glibc
#endif

/// Where everything of one sevvm workspace lives. Chosen by `--workspace DIR`, else
/// `SEVVM_WORKSPACE`, else the current directory.
public struct Workspace: Sendable, Equatable {
    public let root: String

    public init(root: String) {
        let url = URL(fileURLWithPath: root).standardizedFileURL
        self.root = url.path
    }

    /// Resolves the workspace from an explicit option, the environment, or the current directory.
    public static func resolve(
        option: String?,
        environment: [String: String]? = nil
    ) -> Workspace {
        if let option, !option.isEmpty { return Workspace(root: option) }
        let fromEnvironment = environment.map { $0["SEVVM_WORKSPACE"] } ?? environmentValue("SEVVM_WORKSPACE")
        if let env = fromEnvironment, !env.isEmpty { return Workspace(root: env) }
        return Workspace(root: FileManager.default.currentDirectoryPath)
    }

    /// VM definitions, one NAME.json each.
    public var vmsDirectory: String { root + "/vms" }
    /// Disk images and the small test guest.
    public var imagesDirectory: String { root + "/images" }
    /// Per-VM runtime folders (pidfile, sockets, logs), mode 0700.
    public var runDirectory: String { root + "/run" }
    /// What `sevvm build` builds.
    public var stableCommitsFile: String { root + "/stable-commits" }
    /// Source trees and build logs of `sevvm build`.
    public var buildDirectory: String { root + "/build" }
    /// Where `sevvm build` installs by default (AMD's layout: usr/local/bin, usr/local/share/qemu).
    public var installDirectory: String { root + "/usr/local" }

    public func definitionPath(for name: String) -> String { vmsDirectory + "/\(name).json" }
    public func runtimeDirectory(for name: String) -> String { runDirectory + "/\(name)" }
}
