// Which qemu-system-x86_64 sevvm uses, its version, and which SEV objects it can create.
import FoundationEssentials
import QMP
import Support

// QEMUInstallation.version is QMP's QEMUVersion: re-export that one type so users of HostProbe
// can name it without depending on the whole QMP module.
@_exported import struct QMP.QEMUVersion

#if canImport(Glibc)
    import Glibc
#endif

/// The QEMU binary sevvm runs, and where it came from.
public struct QEMUInstallation: Sendable, Codable, Equatable {
    public static let workspaceOrigin = "workspace build"
    public static let systemOrigin = "system"
    public static let explicitOrigin = "--qemu"

    public var path: String
    public var version: QEMUVersion
    /// "workspace build" (from `sevvm build`), "system" (PATH) or "--qemu".
    public var origin: String

    public init(path: String, version: QEMUVersion, origin: String) {
        self.path = path
        self.version = version
        self.origin = origin
    }
}

/// What one QEMU offers for confidential guests: the SEV objects and their properties.
public struct QEMUSEVSupport: Sendable, Codable, Equatable {
    /// Properties of `-object sev-guest` (nil: this QEMU has no such object).
    public var sevGuestProperties: [String]?
    /// Properties of `-object sev-snp-guest` (nil: this QEMU has no such object).
    public var snpGuestProperties: [String]?

    public var hasSEVGuest: Bool { sevGuestProperties != nil }
    public var hasSNPGuest: Bool { snpGuestProperties != nil }

    public init(sevGuestProperties: [String]?, snpGuestProperties: [String]?) {
        self.sevGuestProperties = sevGuestProperties
        self.snpGuestProperties = snpGuestProperties
    }

    /// Parses `-object TYPE,help` output: "TYPE options:" then one "  name=<type>  - text" line each.
    /// Output without the "options:" header (an "invalid object type" error) means the object is missing.
    static func properties(fromHelp output: String) -> [String]? {
        let lines = output.split(separator: "\n")
        guard lines.contains(where: { $0.hasSuffix("options:") }) else { return nil }
        return lines.compactMap { line -> String? in
            let trimmed = line.trimmingSpaces
            guard line.hasPrefix(" "), let equals = trimmed.firstIndex(of: "=") else { return nil }
            return String(trimmed[..<equals])
        }.sorted()
    }
}

/// The oldest release of each component that supports a mode (seed README, "Upstream Version Reference").
public enum MinimumVersions {
    public static func qemu(for mode: GuestMode) -> QEMUVersion {
        switch mode {
        case .none, .sev: return QEMUVersion(major: 2, minor: 12, micro: 0)
        case .sevES: return QEMUVersion(major: 6, minor: 0, micro: 0)
        case .snp: return QEMUVersion(major: 9, minor: 1, micro: 0)
        }
    }

    /// Host kernel (major, minor).
    public static func hostKernel(for mode: GuestMode) -> (Int, Int) {
        switch mode {
        case .none, .sev: return (4, 16)
        case .sevES: return (5, 11)
        case .snp: return (6, 11)
        }
    }

    public static func libvirt(for mode: GuestMode) -> QEMUVersion {
        mode == .snp ? QEMUVersion(major: 10, minor: 5, micro: 0) : QEMUVersion(major: 4, minor: 5, micro: 0)
    }

    /// SNP firmware (API major, minor): 1.51.
    public static let snpFirmware = (1, 51)
}

public enum QEMUDiscovery {
    static let binaryName = "qemu-system-x86_64"

    /// The QEMU to use: `explicitPath` if given, else the workspace's `usr/local/bin` (what `sevvm build`
    /// installs), else PATH. Runs `--version` once to learn its version.
    public static func find(
        workspace: Workspace, explicitPath: String?,
        searchPath: String? = ProcessInfo.processInfo.environment["PATH"]
    ) throws -> QEMUInstallation {
        let (path, origin) = try locate(workspace: workspace, explicitPath: explicitPath, searchPath: searchPath)
        return QEMUInstallation(path: path, version: try version(of: path), origin: origin)
    }

    /// Where the binary is, without running it.
    static func locate(
        workspace: Workspace, explicitPath: String?, searchPath: String?
    ) throws -> (path: String, origin: String) {
        if let explicitPath {
            guard access(explicitPath, X_OK) == 0 else { throw HostProbeError.qemuNotFound(searched: [explicitPath]) }
            return (explicitPath, QEMUInstallation.explicitOrigin)
        }
        let built = workspace.installDirectory + "/bin/" + binaryName
        if access(built, X_OK) == 0 { return (built, QEMUInstallation.workspaceOrigin) }
        if let onPath = ProcessRunner.which(binaryName, path: searchPath) {
            return (onPath, QEMUInstallation.systemOrigin)
        }
        throw HostProbeError.qemuNotFound(searched: [built, "PATH (\(searchPath ?? ""))"])
    }

    /// `qemu-system-x86_64 --version` parsed.
    public static func version(of path: String) throws -> QEMUVersion {
        let result = try ProcessRunner.run([path, "--version"])
        guard result.succeeded, let version = QEMUVersion(parsing: result.stdoutText) else {
            throw HostProbeError.qemuVersionUnknown(path: path, output: result.stdoutText + result.stderrText)
        }
        return version
    }

    /// Asks the binary which SEV objects it has (`-object sev-guest,help`, `-object sev-snp-guest,help`).
    public static func sevSupport(of qemu: QEMUInstallation) async throws -> QEMUSEVSupport {
        try await sevSupport(path: qemu.path)
    }

    static func sevSupport(path: String) async throws -> QEMUSEVSupport {
        let folder = try ChildProcess.privateFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        // The two questions are independent: ask them at the same time.
        async let sev = ChildProcess.run([path, "-object", "sev-guest,help"], in: folder)
        async let snp = ChildProcess.run([path, "-object", "sev-snp-guest,help"], in: folder)
        return QEMUSEVSupport(
            sevGuestProperties: QEMUSEVSupport.properties(fromHelp: try await sev.output),
            snpGuestProperties: QEMUSEVSupport.properties(fromHelp: try await snp.output))
    }
}
