// The VM definition: everything a user declares about one guest, as stored in vms/NAME.json.
import FoundationEssentials
import QMP
import Support

#if canImport(Glibc)
    import Glibc
#endif

public struct VMDefinition: Sendable, Equatable, Codable, JSONReadable {
    /// The schema this sevvm writes; files with a newer version are refused.
    public static let currentSchemaVersion = 1
    public static let memoryRangeMiB = 16...(4 << 20)
    public static let vcpuRange = 1...1024
    public static let defaultCPU = "EPYC-v4"
    public static let defaultMachine = "q35"

    public var schemaVersion: Int
    public var name: String
    /// The encryption mode `start` uses unless told otherwise.
    public var mode: GuestMode
    /// Guest RAM in MiB (the file may also say "2G" or "512M").
    public var memoryMiB: Int
    public var vcpus: Int
    public var cpu: String
    public var machine: String
    public var firmware: FirmwareSetting
    public var disks: [Disk]
    public var cdrom: String?
    public var directBoot: DirectBoot?
    public var network: Network
    public var console: ConsoleMode
    public var sev: SEVSettings
    public var snp: SNPSettings
    /// Overrides of the host's C-bit position and physical address reduction (CPUID 0x8000001F).
    public var cbitpos: Int?
    public var reducedPhysBits: Int?
    public var accel: Accelerator
    /// Host PCI devices handed to the guest with vfio-pci, as DDDD:BB:DD.F.
    public var pciPassthrough: [String]
    /// Back guest RAM with huge pages.
    public var hugepages: Bool
    /// Appended verbatim to QEMU's argv, last: the escape hatch.
    public var extraArgs: [String]
    /// What sevvm created for this VM, so `rm` removes exactly those files.
    public var created: CreatedFiles

    public init(
        name: String, mode: GuestMode = .none, memoryMiB: Int = 2048, vcpus: Int = 4,
        cpu: String = VMDefinition.defaultCPU, machine: String = VMDefinition.defaultMachine
    ) {
        schemaVersion = Self.currentSchemaVersion
        self.name = name
        self.mode = mode
        self.memoryMiB = memoryMiB
        self.vcpus = vcpus
        self.cpu = cpu
        self.machine = machine
        firmware = .auto
        disks = []
        cdrom = nil
        directBoot = nil
        network = Network()
        console = .serial
        sev = SEVSettings()
        snp = SNPSettings()
        cbitpos = nil
        reducedPhysBits = nil
        accel = .kvm
        pciPassthrough = []
        hugepages = false
        extraArgs = []
        created = CreatedFiles()
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case schemaVersion, name, mode, memory, vcpus, cpu, machine, firmware, disks, cdrom, directBoot, network, console
        case sev, snp, cbitpos, reducedPhysBits, accel, pciPassthrough, hugepages, extraArgs, created
    }

    init(json: JSONValue, path: String) throws {
        let r = try FieldReader(json, path: path, fields: CodingKeys.self)
        schemaVersion = try r.required("schemaVersion", r.int)
        name = try r.required("name", r.string)
        mode = try r.choice("mode") ?? .none
        switch r.value("memory") {
        case nil:
            memoryMiB = 2048
        case .int(let mib):
            memoryMiB = Int(clamping: mib)
        case .string(let text):
            guard let mib = ByteSize.parseMiB(text) else {
                throw r.invalid("memory", text, allowed: "MiB as a number, or a size such as 512M or 2G")
            }
            memoryMiB = mib
        default:
            throw r.wrongType("memory", "MiB as a number, or a size such as \"2G\"")
        }
        vcpus = try r.int("vcpus") ?? 4
        cpu = try r.string("cpu") ?? Self.defaultCPU
        machine = try r.string("machine") ?? Self.defaultMachine
        firmware = try r.string("firmware").map(FirmwareSetting.init) ?? .auto
        disks = try r.list("disks", Disk.init) ?? []
        cdrom = try r.string("cdrom")
        directBoot = try r.nested("directBoot", as: DirectBoot.self)
        network = try r.nested("network", as: Network.self) ?? Network()
        console = try r.choice("console") ?? .serial
        sev = try r.nested("sev", as: SEVSettings.self) ?? SEVSettings()
        snp = try r.nested("snp", as: SNPSettings.self) ?? SNPSettings()
        cbitpos = try r.int("cbitpos")
        reducedPhysBits = try r.int("reducedPhysBits")
        accel = try r.choice("accel") ?? .kvm
        pciPassthrough = try r.strings("pciPassthrough") ?? []
        hugepages = try r.bool("hugepages") ?? false
        extraArgs = try r.strings("extraArgs") ?? []
        created = try r.nested("created", as: CreatedFiles.self) ?? CreatedFiles()
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(schemaVersion, forKey: .schemaVersion)
        try c.encode(name, forKey: .name)
        try c.encode(mode, forKey: .mode)
        try c.encode(memoryMiB, forKey: .memory)
        try c.encode(vcpus, forKey: .vcpus)
        try c.encode(cpu, forKey: .cpu)
        try c.encode(machine, forKey: .machine)
        try c.encode(firmware, forKey: .firmware)
        try c.encode(disks, forKey: .disks)
        try c.encodeIfPresent(cdrom, forKey: .cdrom)
        try c.encodeIfPresent(directBoot, forKey: .directBoot)
        try c.encode(network, forKey: .network)
        try c.encode(console, forKey: .console)
        try c.encode(sev, forKey: .sev)
        try c.encode(snp, forKey: .snp)
        try c.encodeIfPresent(cbitpos, forKey: .cbitpos)
        try c.encodeIfPresent(reducedPhysBits, forKey: .reducedPhysBits)
        try c.encode(accel, forKey: .accel)
        try c.encode(pciPassthrough, forKey: .pciPassthrough)
        try c.encode(hugepages, forKey: .hugepages)
        try c.encode(extraArgs, forKey: .extraArgs)
        try c.encode(created, forKey: .created)
    }
}

/// `auto` (discover OVMF: the workspace build first, then the distribution's) or a firmware path.
public enum FirmwareSetting: Sendable, Equatable, Codable, CustomStringConvertible {
    case auto
    case path(String)

    public init(_ text: String) { self = text == "auto" || text.isEmpty ? .auto : .path(text) }

    public var explicitPath: String? {
        if case .path(let path) = self { return path }
        return nil
    }

    public var description: String { explicitPath ?? "auto" }

    public init(from decoder: Decoder) throws {
        guard case .string(let text) = try JSONTree.decode(decoder) else {
            throw DefinitionError.wrongType(file: nil, field: fieldPath(decoder.codingPath), expected: "a string")
        }
        self.init(text)
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

public enum DiskBus: String, Sendable, Codable, CaseIterable {
    /// virtio-scsi + scsi-hd: the default, and what AMD recommends for encrypted guests.
    case virtioSCSI = "virtio-scsi"
    /// virtio-blk: multiqueue buffers can exhaust an encrypted guest's SWIOTLB pool.
    case virtioBlk = "virtio-blk"
}

public struct Disk: Sendable, Equatable, Codable, JSONReadable {
    public var path: String
    /// The image format (qcow2, raw, ...); detected with `qemu-img info` at create time.
    public var format: String?
    public var bus: DiskBus
    public var readOnly: Bool

    public init(path: String, format: String? = nil, bus: DiskBus = .virtioSCSI, readOnly: Bool = false) {
        self.path = path
        self.format = format
        self.bus = bus
        self.readOnly = readOnly
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case path, format, bus, readOnly }

    init(json: JSONValue, path: String) throws {
        let r = try FieldReader(json, path: path, fields: CodingKeys.self)
        self.path = try r.required("path", r.string)
        format = try r.string("format")
        bus = try r.choice("bus") ?? .virtioSCSI
        readOnly = try r.bool("readOnly") ?? false
    }
}

/// Direct kernel boot: QEMU loads the kernel (and initrd) instead of the firmware's boot menu.
public struct DirectBoot: Sendable, Equatable, Codable, JSONReadable {
    public var kernel: String
    public var initrd: String?
    public var append: String?

    public init(kernel: String, initrd: String? = nil, append: String? = nil) {
        self.kernel = kernel
        self.initrd = initrd
        self.append = append
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case kernel, initrd, append }

    init(json: JSONValue, path: String) throws {
        let r = try FieldReader(json, path: path, fields: CodingKeys.self)
        kernel = try r.required("kernel", r.string)
        initrd = try r.string("initrd")
        append = try r.string("append")
    }
}

public enum NetworkMode: String, Sendable, Codable, CaseIterable {
    case none
    /// QEMU user-mode networking (slirp/passt): no host setup, port forwards for inbound.
    case user
}

/// A host port forwarded to a guest port, written "2222:22" or "udp:5353:53".
public struct PortForward: Sendable, Equatable, Hashable, Codable, JSONReadable, CustomStringConvertible {
    public enum TransportProtocol: String, Sendable, Codable, CaseIterable { case tcp, udp }
    public var transport: TransportProtocol
    public var hostPort: Int
    public var guestPort: Int

    public init(transport: TransportProtocol = .tcp, hostPort: Int, guestPort: Int) {
        self.transport = transport
        self.hostPort = hostPort
        self.guestPort = guestPort
    }

    public static let syntax = "HOST:GUEST or udp:HOST:GUEST with ports 1..65535, e.g. 2222:22"

    /// Parses "2222:22", "tcp:2222:22", "udp:5353:53".
    public init?(parsing text: String) {
        var parts = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        var transport = TransportProtocol.tcp
        if parts.count == 3 {
            guard let parsed = TransportProtocol(rawValue: parts[0]) else { return nil }
            transport = parsed
            parts.removeFirst()
        }
        guard parts.count == 2, let host = Int(parts[0]), let guest = Int(parts[1]),
            (1...65535).contains(host), (1...65535).contains(guest)
        else { return nil }
        self.init(transport: transport, hostPort: host, guestPort: guest)
    }

    public var description: String {
        (transport == .tcp ? "" : "\(transport.rawValue):") + "\(hostPort):\(guestPort)"
    }

    init(json: JSONValue, path: String) throws {
        guard case .string(let text) = json else {
            throw DefinitionError.wrongType(file: nil, field: path, expected: "a string such as \"2222:22\"")
        }
        guard let forward = PortForward(parsing: text) else {
            throw DefinitionError.invalidValue(file: nil, field: path, value: text, allowed: Self.syntax)
        }
        self = forward
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

public struct Network: Sendable, Equatable, Codable, JSONReadable {
    public var mode: NetworkMode
    public var forwards: [PortForward]

    public init(mode: NetworkMode = .none, forwards: [PortForward] = []) {
        self.mode = mode
        self.forwards = forwards
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case mode, forwards }

    init(json: JSONValue, path: String) throws {
        let r = try FieldReader(json, path: path, fields: CodingKeys.self)
        mode = try r.choice("mode") ?? .none
        forwards = try r.list("forwards", PortForward.init) ?? []
    }
}

public enum ConsoleMode: String, Sendable, Codable, CaseIterable {
    /// The guest's first serial port on a console socket with a log file (`sevvm console`).
    case serial
    case none
}

public enum Accelerator: String, Sendable, Codable, CaseIterable {
    /// Hardware virtualisation: required for every SEV mode.
    case kvm
    /// Emulation: for tests and hosts without KVM, never encrypted.
    case tcg
}

/// SEV and SEV-ES settings (the `sev-guest` object).
public struct SEVSettings: Sendable, Equatable, Codable, JSONReadable {
    /// nil: 0x1 for SEV, 0x5 for SEV-ES.
    public var policy: SEVPolicy?
    /// Measured direct boot: QEMU adds the kernel/initrd/cmdline hashes to the firmware.
    public var kernelHashes: Bool

    public init(policy: SEVPolicy? = nil, kernelHashes: Bool = false) {
        self.policy = policy
        self.kernelHashes = kernelHashes
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case policy, kernelHashes }

    init(json: JSONValue, path: String) throws {
        let r = try FieldReader(json, path: path, fields: CodingKeys.self)
        policy = try r.nested("policy", as: SEVPolicy.self)
        kernelHashes = try r.bool("kernelHashes") ?? false
    }
}

/// SEV-SNP settings (the `sev-snp-guest` object).
public struct SNPSettings: Sendable, Equatable, Codable, JSONReadable {
    public var policy: SNPPolicy
    /// 32 bytes, base64: given to the guest's attestation reports verbatim.
    public var hostData: String?
    /// Files with the 96-byte ID block and the (up to 4096-byte) ID authentication structure.
    public var idBlock: String?
    public var idAuth: String?
    public var authorKeyEnabled: Bool
    public var vcekDisabled: Bool
    /// 16 bytes, base64.
    public var guestVisibleWorkarounds: String?
    public var kernelHashes: Bool

    public static let hostDataLength = 32
    public static let guestVisibleWorkaroundsLength = 16
    public static let idBlockLength = 96
    public static let idAuthMaximumLength = 4096

    public init(
        policy: SNPPolicy = .default, hostData: String? = nil, idBlock: String? = nil, idAuth: String? = nil,
        authorKeyEnabled: Bool = false, vcekDisabled: Bool = false, guestVisibleWorkarounds: String? = nil, kernelHashes: Bool = false
    ) {
        self.policy = policy
        self.hostData = hostData
        self.idBlock = idBlock
        self.idAuth = idAuth
        self.authorKeyEnabled = authorKeyEnabled
        self.vcekDisabled = vcekDisabled
        self.guestVisibleWorkarounds = guestVisibleWorkarounds
        self.kernelHashes = kernelHashes
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case policy, hostData, idBlock, idAuth, authorKeyEnabled, vcekDisabled, guestVisibleWorkarounds, kernelHashes
    }

    init(json: JSONValue, path: String) throws {
        let r = try FieldReader(json, path: path, fields: CodingKeys.self)
        policy = try r.nested("policy", as: SNPPolicy.self) ?? .default
        hostData = try r.string("hostData")
        idBlock = try r.string("idBlock")
        idAuth = try r.string("idAuth")
        authorKeyEnabled = try r.bool("authorKeyEnabled") ?? false
        vcekDisabled = try r.bool("vcekDisabled") ?? false
        guestVisibleWorkarounds = try r.string("guestVisibleWorkarounds")
        kernelHashes = try r.bool("kernelHashes") ?? false
    }
}

/// Files sevvm made for a VM (paths as stored in the definition); `rm` deletes only these.
public struct CreatedFiles: Sendable, Equatable, Codable, JSONReadable {
    public var disks: [String]
    /// The per-VM copy of OVMF_VARS for split firmware (SEV, SEV-ES, no encryption).
    public var varsCopy: String?

    public init(disks: [String] = [], varsCopy: String? = nil) {
        self.disks = disks
        self.varsCopy = varsCopy
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case disks, varsCopy }

    init(json: JSONValue, path: String) throws {
        let r = try FieldReader(json, path: path, fields: CodingKeys.self)
        disks = try r.strings("disks") ?? []
        varsCopy = try r.string("varsCopy")
    }
}
