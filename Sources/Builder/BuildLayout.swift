// Where `sevvm build` keeps sources, logs, records, staging folders and kernel packages.
import FoundationEssentials

#if canImport(Glibc)
    import Glibc
#endif

/// Paths under `<workspace>/build`. One clone per component; both kernels share one object store
/// (`linux.git`) with a worktree each, so the second kernel costs a checkout, not a clone.
public struct BuildLayout: Sendable, Equatable {
    public let buildDirectory: String
    public let installDirectory: String

    public init(buildDirectory: String, installDirectory: String) {
        self.buildDirectory = buildDirectory
        self.installDirectory = installDirectory
    }

    /// The git repository holding the component's objects.
    public func repository(_ component: Component) -> String {
        switch component {
        case .qemu: return buildDirectory + "/qemu"
        case .ovmf: return buildDirectory + "/ovmf"
        case .kernelHost, .kernelGuest: return buildDirectory + "/linux.git"
        }
    }

    /// The checked-out tree the component is built in. Kernel trees sit one folder down because
    /// bindeb-pkg writes its packages into the parent folder, which must not be shared.
    public func sourceTree(_ component: Component) -> String {
        switch component {
        case .qemu, .ovmf: return repository(component)
        case .kernelHost: return buildDirectory + "/kernel-host/linux"
        case .kernelGuest: return buildDirectory + "/kernel-guest/linux"
        }
    }

    /// Where the built kernel packages are kept (AMD's linux/host and linux/guest).
    public func kernelPackages(_ component: Component) -> String {
        buildDirectory + "/linux/" + (component == .kernelHost ? "host" : "guest")
    }

    public func logDirectory(_ component: Component) -> String { buildDirectory + "/logs/\(component)" }
    public func logPath(_ component: Component, _ step: StepKind) -> String { logDirectory(component) + "/\(step).log" }
    public func recordPath(_ component: Component) -> String { buildDirectory + "/records/\(component).json" }
    public func staging(_ component: Component) -> String { buildDirectory + "/staging/\(component)" }
    public func sourceCommitFile(_ component: Component) -> String {
        buildDirectory + "/source-commit.\(component.sourceCommitName)"
    }
    public var lockPath: String { buildDirectory + "/.build.lock" }

    /// The git ref a fetch stores the component's revision under, so gc never drops it.
    public func fetchedRef(_ component: Component) -> String { "refs/sevvm/\(component)/fetched" }
}
