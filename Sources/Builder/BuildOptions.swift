// What one `sevvm build` invocation asks for.
import FoundationEssentials
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// The OVMF platform to build: the general one, or AMD's measured-direct-boot one (hashes table).
public enum OVMFPlatform: String, Sendable, Codable, CaseIterable {
    case ovmfX64 = "OvmfPkgX64"
    case amdSevX64 = "AmdSevX64"

    public var dscPath: String { self == .ovmfX64 ? "OvmfPkg/OvmfPkgX64.dsc" : "OvmfPkg/AmdSev/AmdSevX64.dsc" }
    /// The dsc's OUTPUT_DIRECTORY under the edk2 tree.
    public var outputDirectory: String { self == .ovmfX64 ? "Build/OvmfX64" : "Build/AmdSev" }
    /// Firmware files this platform produces (AmdSevX64 only makes the single-file image).
    public var firmwareFiles: [String] { self == .ovmfX64 ? ["OVMF_CODE.fd", "OVMF_VARS.fd", "OVMF.fd"] : ["OVMF.fd"] }
}

public struct BuildOptions: Sendable {
    public var workspace: Workspace
    public var stableCommitsPath: String
    public var installDirectory: String
    public var components: [Component]
    public var jobs: Int
    public var force = false
    public var package = false
    public var installDependencies = false
    public var ovmfPlatform = OVMFPlatform.ovmfX64
    /// The .config kernels start from; nil means the running kernel's /boot/config-$(uname -r).
    public var kernelConfig: String?
    /// deb or rpm kernel packages; nil means the distribution's format.
    public var kernelPackageFormat: PackageFormat?
    /// The environment steps run in (and where tools are looked up): the caller's by default.
    public var environment: [String: String]
    /// Where snp-release-<date>/ is written by --package.
    public var releaseParent: String
    public var releaseDate = Date()

    public init(workspace: Workspace, components: [Component] = Component.allCases) {
        self.workspace = workspace
        stableCommitsPath = workspace.stableCommitsFile
        installDirectory = workspace.installDirectory
        self.components = components
        jobs = max(1, ProcessInfo.processInfo.activeProcessorCount)
        environment = ProcessInfo.processInfo.environment
        releaseParent = workspace.root
    }

    public var layout: BuildLayout {
        BuildLayout(buildDirectory: workspace.buildDirectory, installDirectory: installDirectory)
    }

    /// Environment variables that change what compilers produce: part of each component's inputs.
    /// PATH is deliberately not among them (it differs between shells without changing the result;
    /// the compiler version is recorded instead).
    public static let relevantEnvironment = [
        "CC", "CXX", "CFLAGS", "CXXFLAGS", "CPPFLAGS", "LDFLAGS", "PKG_CONFIG_PATH", "ARCH", "CROSS_COMPILE", "KCFLAGS",
        "HOSTCC", "PYTHON_COMMAND",
    ]
}
