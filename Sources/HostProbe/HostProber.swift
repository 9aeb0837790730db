// HostProber: gathers every host fact caps reports, from a root folder and the hardware sources.
import FoundationEssentials
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// Everything a probe reads, injectable so tests replay a Milan, Genoa or Turin host from fixtures.
public struct HostProber: Sendable {
    public var root: HostRoot
    public var cpuid: CPUIDSource
    public var msr: MSRSource
    public var sevDevice: SEVDevice
    public var kvm: KVMDevice

    /// The live host (or a fixture tree at `root`, with the real CPUID and devices under it).
    public init(root: HostRoot = HostRoot()) {
        self.init(
            root: root, cpuid: NativeCPUID(), msr: DeviceMSR(root: root), sevDevice: DeviceSEV(root: root), kvm: DeviceKVM(root: root))
    }

    public init(root: HostRoot, cpuid: CPUIDSource, msr: MSRSource, sevDevice: SEVDevice, kvm: KVMDevice) {
        self.root = root
        self.cpuid = cpuid
        self.msr = msr
        self.sevDevice = sevDevice
        self.kvm = kvm
    }
}

/// What the software side of a probe uses: the workspace, an explicit QEMU, where to ask for capabilities.
public struct ProbeOptions: Sendable {
    public var workspace: Workspace
    public var qemuPath: String?
    /// Where `query-sev-capabilities` is answered.
    public var capabilities: CapabilityRoute
    /// PATH used to find QEMU and libvirt.
    public var searchPath: String?
    /// RLIMIT_MEMLOCK soft limit in bytes (nil: unlimited); defaults to this process's.
    public var memlockLimit: UInt64?
    public var isRoot: Bool

    public init(
        workspace: Workspace, qemuPath: String? = nil, capabilities: CapabilityRoute = .throwawayQEMU,
        searchPath: String? = ProcessInfo.processInfo.environment["PATH"], memlockLimit: UInt64? = ProbeOptions.currentMemlockLimit(),
        isRoot: Bool = getuid() == 0
    ) {
        self.workspace = workspace
        self.qemuPath = qemuPath
        self.capabilities = capabilities
        self.searchPath = searchPath
        self.memlockLimit = memlockLimit
        self.isRoot = isRoot
    }

    public static func currentMemlockLimit() -> UInt64? {
        var limit = rlimit()
        // RLIMIT_MEMLOCK is a macro Swift does not import; glibc's enum value is __RLIMIT_MEMLOCK.
        guard getrlimit(__rlimit_resource_t(__RLIMIT_MEMLOCK.rawValue), &limit) == 0, limit.rlim_cur != rlim_t.max else { return nil }
        return UInt64(limit.rlim_cur)
    }
}

/// Where caps asks `query-sev-capabilities`.
public enum CapabilityRoute: Sendable {
    /// Start `qemu-system-x86_64 -machine none -accel kvm -S -nodefaults`, ask, kill it.
    case throwawayQEMU
    /// Ask the QEMU already listening on this QMP socket (`--qmp SOCKET`).
    case socket(String)
    /// Any other source (tests replay captured answers through a real QMP server).
    case source(SEVCapabilitiesSource)
    /// Do not ask (the check is SKIP).
    case none
}
