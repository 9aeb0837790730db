// Which OVMF sevvm boots a guest with, and what that firmware supports (single file, SEV metadata, hashes table).
import FoundationEssentials
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// The firmware a guest boots: one file for SNP (`-bios`), or code + vars for pflash.
public struct FirmwareChoice: Sendable, Codable, Equatable {
    public var code: String
    /// The vars template to copy per VM; nil for a single-file OVMF.
    public var vars: String?
    public var singleFile: Bool
    /// "workspace build", "system" or "--firmware".
    public var origin: String
    /// The SEV metadata section SNP launches need (OvmfPkg's SEV-SNP support).
    public var hasSEVMetadata: Bool
    /// The kernel hashes table measured direct boot needs (OvmfPkg/AmdSev builds).
    public var hasHashesTable: Bool

    public init(code: String, vars: String?, singleFile: Bool, origin: String, hasSEVMetadata: Bool, hasHashesTable: Bool) {
        self.code = code
        self.vars = vars
        self.singleFile = singleFile
        self.origin = origin
        self.hasSEVMetadata = hasSEVMetadata
        self.hasHashesTable = hasHashesTable
    }
}

/// What caps and discovery need to know of one OVMF file.
struct OVMFTraits: Equatable {
    var size: Int
    var singleFile: Bool
    var hasSEVMetadata: Bool
    var hasHashesTable: Bool
}

/// A place OVMF may be installed: a single file, or a code file and its vars template.
struct FirmwareCandidate: Equatable {
    var code: String
    var vars: String?
    var origin: String
}

public enum FirmwareDiscovery {
    /// Where distributions install OVMF, in the order sevvm prefers them after the workspace's own build.
    static let systemCandidates: [FirmwareCandidate] = [
        // Debian and Ubuntu.
        FirmwareCandidate(code: "/usr/share/ovmf/OVMF.amdsev.fd", vars: nil, origin: QEMUInstallation.systemOrigin),
        FirmwareCandidate(code: "/usr/share/ovmf/OVMF.fd", vars: nil, origin: QEMUInstallation.systemOrigin),
        FirmwareCandidate(
            code: "/usr/share/OVMF/OVMF_CODE_4M.fd", vars: "/usr/share/OVMF/OVMF_VARS_4M.fd", origin: QEMUInstallation.systemOrigin),
        FirmwareCandidate(
            code: "/usr/share/OVMF/OVMF_CODE.fd", vars: "/usr/share/OVMF/OVMF_VARS.fd", origin: QEMUInstallation.systemOrigin),
        // Fedora, RHEL.
        FirmwareCandidate(code: "/usr/share/edk2/ovmf/OVMF.amdsev.fd", vars: nil, origin: QEMUInstallation.systemOrigin),
        FirmwareCandidate(
            code: "/usr/share/edk2/ovmf/OVMF_CODE.fd", vars: "/usr/share/edk2/ovmf/OVMF_VARS.fd", origin: QEMUInstallation.systemOrigin),
        // Arch, openSUSE.
        FirmwareCandidate(code: "/usr/share/edk2/x64/OVMF.fd", vars: nil, origin: QEMUInstallation.systemOrigin),
        FirmwareCandidate(
            code: "/usr/share/edk2/x64/OVMF_CODE.fd", vars: "/usr/share/edk2/x64/OVMF_VARS.fd", origin: QEMUInstallation.systemOrigin),
        FirmwareCandidate(code: "/usr/share/qemu/ovmf-x86_64.bin", vars: nil, origin: QEMUInstallation.systemOrigin),
    ]

    /// The workspace build (`sevvm build ovmf` installs AMD's layout) comes first.
    static func candidates(workspace: Workspace, root: HostRoot) -> [FirmwareCandidate] {
        let share = workspace.installDirectory + "/share/qemu"
        let built = [
            FirmwareCandidate(code: share + "/OVMF.fd", vars: nil, origin: QEMUInstallation.workspaceOrigin),
            FirmwareCandidate(code: share + "/OVMF_CODE.fd", vars: share + "/OVMF_VARS.fd", origin: QEMUInstallation.workspaceOrigin),
        ]
        let system = systemCandidates.map {
            FirmwareCandidate(code: root.resolve($0.code), vars: $0.vars.map(root.resolve), origin: $0.origin)
        }
        return built + system
    }

    /// The firmware for `mode`: `explicitPath` when given (checked), else the first fitting candidate.
    /// SNP needs a single-file OVMF with SEV metadata; SEV and SEV-ES prefer code + vars for pflash.
    public static func find(for mode: GuestMode, workspace: Workspace, explicitPath: String?) throws -> FirmwareChoice {
        try find(for: mode, workspace: workspace, explicitPath: explicitPath, root: HostRoot())
    }

    static func find(for mode: GuestMode, workspace: Workspace, explicitPath: String?, root: HostRoot) throws -> FirmwareChoice {
        if let explicitPath {
            let traits = try inspectOVMF(path: explicitPath)
            if let problem = unsuitability(traits, for: mode) {
                throw HostProbeError.firmwareUnsuitable(path: explicitPath, mode: mode, reason: problem)
            }
            let vars = traits.singleFile ? nil : siblingVars(of: explicitPath)
            return choice(FirmwareCandidate(code: explicitPath, vars: vars, origin: "--firmware"), traits)
        }
        // Inspect in preference order and stop at the first fit: each OVMF is read whole.
        var fallback: (FirmwareCandidate, OVMFTraits)?
        var preferred: (FirmwareCandidate, OVMFTraits)?
        for candidate in candidates(workspace: workspace, root: root) {
            if let vars = candidate.vars, !FileManager.default.fileExists(atPath: vars) { continue }
            guard FileManager.default.fileExists(atPath: candidate.code), let traits = try? inspectOVMF(path: candidate.code),
                unsuitability(traits, for: mode) == nil
            else { continue }
            // pflash (code + vars) keeps UEFI variables per VM, so non-SNP modes prefer a split pair.
            if mode == .snp || !traits.singleFile {
                preferred = (candidate, traits)
                break
            }
            fallback = fallback ?? (candidate, traits)
        }
        preferred = preferred ?? fallback
        guard let (candidate, traits) = preferred else {
            let searched = candidates(workspace: workspace, root: root).map(\.code)
            let reason = mode == .snp ? "SNP needs a single-file OVMF.fd with SEV metadata" : "no OVMF file is installed"
            throw HostProbeError.firmwareNotFound(mode: mode, searched: searched, reason: reason)
        }
        return choice(candidate, traits)
    }

    /// Why `traits` cannot boot `mode`, or nil when it can.
    static func unsuitability(_ traits: OVMFTraits, for mode: GuestMode) -> String? {
        guard mode == .snp else { return nil }
        if !traits.singleFile { return "SNP boots with -bios, which needs the single-file OVMF.fd, not a split OVMF_CODE" }
        if !traits.hasSEVMetadata { return "it has no SEV metadata section (built without SEV-SNP support)" }
        return nil
    }

    private static func choice(_ candidate: FirmwareCandidate, _ traits: OVMFTraits) -> FirmwareChoice {
        FirmwareChoice(
            code: candidate.code, vars: traits.singleFile ? nil : candidate.vars, singleFile: traits.singleFile,
            origin: candidate.origin, hasSEVMetadata: traits.hasSEVMetadata, hasHashesTable: traits.hasHashesTable)
    }

    /// OVMF_CODE*.fd ships next to OVMF_VARS*.fd with the same suffix.
    static func siblingVars(of code: String) -> String? {
        let name = code.fileName
        guard name.contains("CODE") else { return nil }
        let vars = code.parentPath + "/" + name.replacing("CODE", with: "VARS")
        return FileManager.default.fileExists(atPath: vars) ? vars : nil
    }
}
