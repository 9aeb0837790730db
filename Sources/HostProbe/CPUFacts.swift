// What CPUID says about the processor and its memory-encryption features (leaf 0x8000001F).
import FoundationEssentials
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// The CPU's identity: vendor, brand string, family/model and the EPYC generation they imply.
public struct CPUIdentity: Sendable, Equatable, Codable {
    public var vendor: String
    public var brand: String
    public var family: Int
    public var model: Int
    /// "Naples", "Rome", "Milan", "Genoa", "Turin" or nil when not an EPYC family/model we know.
    public var generation: String?

    public var isAMD: Bool { vendor == "AuthenticAMD" }

    public init(cpuid: CPUIDSource) {
        let leaf0 = cpuid.cpuid(leaf: 0, subleaf: 0)
        vendor = leaf0.map { Self.ascii([$0.ebx, $0.edx, $0.ecx]) } ?? ""
        let brandLeaves = ([0x8000_0002, 0x8000_0003, 0x8000_0004] as [UInt32]).compactMap { cpuid.cpuid(leaf: $0, subleaf: 0) }
        brand = Self.ascii(brandLeaves.flatMap { [$0.eax, $0.ebx, $0.ecx, $0.edx] }).trimmingSpaces
        let signature = cpuid.cpuid(leaf: 1, subleaf: 0)?.eax ?? 0
        let baseFamily = Int((signature >> 8) & 0xF)
        let baseModel = Int((signature >> 4) & 0xF)
        family = baseFamily == 0xF ? baseFamily + Int((signature >> 20) & 0xFF) : baseFamily
        model = baseFamily == 0xF ? baseModel | Int((signature >> 16) & 0xF) << 4 : baseModel
        generation = Self.generation(family: family, model: model)
    }

    /// AMD's EPYC server generations by family and model range.
    static func generation(family: Int, model: Int) -> String? {
        switch (family, model) {
        case (0x17, 0x00...0x0F): return "Naples"
        case (0x17, 0x30...0x3F): return "Rome"
        case (0x19, 0x00...0x0F): return "Milan"
        case (0x19, 0x10...0x1F), (0x19, 0xA0...0xAF): return "Genoa"
        case (0x1A, 0x00...0x1F): return "Turin"
        default: return nil
        }
    }

    private static func ascii(_ words: [UInt32]) -> String {
        let bytes = words.flatMap { word in (0..<4).map { UInt8(truncatingIfNeeded: word >> (8 * $0)) } }
        return String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
    }
}

/// CPUID 0x8000001F decoded: the memory-encryption features the CPU offers.
public struct MemoryEncryptionFeatures: Sendable, Equatable, Codable {
    public var sme: Bool
    public var sev: Bool
    public var sevES: Bool
    public var snp: Bool
    public var vmpl: Bool
    /// EBX[5:0]: the C-bit position in guest page tables (47 on Milan, 51 on Genoa and Turin).
    public var cbitpos: Int
    /// EBX[11:6]: physical address bits lost when memory encryption is on.
    public var reducedPhysBits: Int
    /// EBX[15:12]: number of VMPLs (4 with SNP).
    public var vmplCount: Int
    /// ECX: how many encrypted guests run at once (the ASID count).
    public var encryptedGuests: Int
    /// EDX: the lowest ASID usable by a plain SEV guest (ASIDs below it are for SEV-ES/SNP).
    public var minimumSEVASID: Int

    public init(registers r: CPUIDRegisters) {
        sme = r.eax & 1 != 0
        sev = r.eax & (1 << 1) != 0
        sevES = r.eax & (1 << 3) != 0
        snp = r.eax & (1 << 4) != 0
        vmpl = r.eax & (1 << 5) != 0
        cbitpos = Int(r.ebx & 0x3F)
        reducedPhysBits = Int((r.ebx >> 6) & 0x3F)
        vmplCount = Int((r.ebx >> 12) & 0xF)
        encryptedGuests = Int(r.ecx)
        minimumSEVASID = Int(r.edx)
    }

    /// Leaf 0x8000001F, or nil when the CPU has no such leaf.
    public static func read(from cpuid: CPUIDSource) -> MemoryEncryptionFeatures? {
        guard let max = cpuid.cpuid(leaf: 0x8000_0000, subleaf: 0)?.eax, max >= 0x8000_001F,
            let registers = cpuid.cpuid(leaf: 0x8000_001F, subleaf: 0)
        else { return nil }
        return MemoryEncryptionFeatures(registers: registers)
    }
}

/// The facts launch needs to build SEV objects: C-bit position, address reduction, what KVM offers.
public struct SEVHostFacts: Sendable, Equatable, Codable {
    /// nil when the CPU does not report SEV (then QEMU's own check will refuse any cbitpos).
    public var cbitpos: Int?
    public var reducedPhysBits: Int?
    public var cpuSupportsSEV: Bool
    public var cpuSupportsSEVES: Bool
    public var cpuSupportsSNP: Bool
    /// kvm_amd's `sev`, `sev_es`, `sev_snp` parameters (nil when kvm_amd is not loaded).
    public var kvmSEV: Bool?
    public var kvmSEVES: Bool?
    public var kvmSNP: Bool?
    public var sevDevicePresent: Bool

    public init(
        cbitpos: Int? = nil, reducedPhysBits: Int? = nil, cpuSupportsSEV: Bool = false, cpuSupportsSEVES: Bool = false,
        cpuSupportsSNP: Bool = false, kvmSEV: Bool? = nil, kvmSEVES: Bool? = nil, kvmSNP: Bool? = nil, sevDevicePresent: Bool = false
    ) {
        self.cbitpos = cbitpos
        self.reducedPhysBits = reducedPhysBits
        self.cpuSupportsSEV = cpuSupportsSEV
        self.cpuSupportsSEVES = cpuSupportsSEVES
        self.cpuSupportsSNP = cpuSupportsSNP
        self.kvmSEV = kvmSEV
        self.kvmSEVES = kvmSEVES
        self.kvmSNP = kvmSNP
        self.sevDevicePresent = sevDevicePresent
    }

    /// True when the CPU and KVM both offer `mode` (the platform may still refuse; `sevvm caps` says why).
    public func supports(_ mode: GuestMode) -> Bool {
        switch mode {
        case .none: return true
        case .sev: return cpuSupportsSEV && kvmSEV == true
        case .sevES: return cpuSupportsSEVES && kvmSEVES == true
        case .snp: return cpuSupportsSNP && kvmSNP == true
        }
    }
}

/// Reads SEVHostFacts: CPUID 0x8000001F through `cpuid`, kvm_amd parameters and /dev/sev under `root`.
public func probeSEVHostFacts(root: String = "/", cpuid: CPUIDSource = NativeCPUID()) -> SEVHostFacts {
    HostProber.probeSEVHostFacts(root: root, cpuid: cpuid)
}

extension HostProber {
    /// Reads SEVHostFacts: CPUID 0x8000001F through `cpuid`, kvm_amd parameters and /dev/sev under `root`.
    public static func probeSEVHostFacts(root: String = "/", cpuid: CPUIDSource = NativeCPUID()) -> SEVHostFacts {
        let host = HostRoot(root)
        let features = MemoryEncryptionFeatures.read(from: cpuid)
        let sev = features?.sev ?? false
        return SEVHostFacts(
            cbitpos: sev ? features?.cbitpos : nil,
            reducedPhysBits: sev ? features?.reducedPhysBits : nil,
            cpuSupportsSEV: sev,
            cpuSupportsSEVES: features?.sevES ?? false,
            cpuSupportsSNP: features?.snp ?? false,
            kvmSEV: host.flag(KVMParameters.sev),
            kvmSEVES: host.flag(KVMParameters.sevES),
            kvmSNP: host.flag(KVMParameters.snp),
            sevDevicePresent: host.exists("/dev/sev"))
    }
}

/// Where kvm_amd exposes its SEV switches.
enum KVMParameters {
    static let module = "/sys/module/kvm_amd"
    static let sev = "/sys/module/kvm_amd/parameters/sev"
    static let sevES = "/sys/module/kvm_amd/parameters/sev_es"
    static let snp = "/sys/module/kvm_amd/parameters/sev_snp"
}
