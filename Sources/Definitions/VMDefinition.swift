// The VM definition: everything a user declares about one guest, as stored in vms/NAME.json.
import Foundation
import Support

public struct VMDefinition: Sendable, Equatable, Codable {
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

    public init(from decoder: Decoder) throws {
        let c = try decoder.strictContainer(keyedBy: CodingKeys.self)
        schemaVersion = try c.decode(Int.self, forKey: .schemaVersion)
        name = try c.decode(String.self, forKey: .name)
        mode = try Self.decodeEnum(c, .mode, or: .none)
        if let mib = try? c.decodeIfPresent(Int.self, forKey: .memory) {
            memoryMiB = mib
        } else if let text = try? c.decodeIfPresent(String.self, forKey: .memory) {
            guard let mib = ByteSize.parseMiB(text) else {
                throw c.invalid(.memory, text, allowed: "MiB as a number, or a size such as 512M or 2G")
            }
            memoryMiB = mib
        } else if c.contains(.memory), try !c.decodeNil(forKey: .memory) {
            throw DefinitionError.wrongType(file: nil, field: "memory", expected: "MiB as a number, or a size such as \"2G\"")
        } else {
            memoryMiB = 2048
        }
        vcpus = try c.value(.vcpus, or: 4)
        cpu = try c.value(.cpu, or: Self.defaultCPU)
        machine = try c.value(.machine, or: Self.defaultMachine)
        firmware = try c.value(.firmware, or: .auto)
        disks = try c.value(.disks, or: [])
        cdrom = try c.decodeIfPresent(String.self, forKey: .cdrom)
        directBoot = try c.decodeIfPresent(DirectBoot.self, forKey: .directBoot)
        network = try c.value(.network, or: Network())
        console = try Self.decodeEnum(c, .console, or: .serial)
        sev = try c.value(.sev, or: SEVSettings())
        snp = try c.value(.snp, or: SNPSettings())
        cbitpos = try c.decodeIfPresent(Int.self, forKey: .cbitpos)
        reducedPhysBits = try c.decodeIfPresent(Int.self, forKey: .reducedPhysBits)
        accel = try Self.decodeEnum(c, .accel, or: .kvm)
        pciPassthrough = try c.value(.pciPassthrough, or: [])
        hugepages = try c.value(.hugepages, or: false)
        extraArgs = try c.value(.extraArgs, or: [])
        created = try c.value(.created, or: CreatedFiles())
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

    /// Decodes a string-backed enum, naming the allowed spellings when the value is wrong.
    static func decodeEnum<E: RawRepresentable & CaseIterable, K>(
        _ c: KeyedDecodingContainer<K>, _ key: K, or fallback: E
    ) throws -> E where E.RawValue == String {
        guard let text = try c.decodeIfPresent(String.self, forKey: key) else { return fallback }
        guard let value = E(rawValue: text) else {
            throw c.invalid(key, text, allowed: E.allCases.map(\.rawValue).joined(separator: ", "))
        }
        return value
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

    public init(from decoder: Decoder) throws { self.init(try decoder.singleValueContainer().decode(String.self)) }

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

public struct Disk: Sendable, Equatable, Codable {
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

    public init(from decoder: Decoder) throws {
        let c = try decoder.strictContainer(keyedBy: CodingKeys.self)
        path = try c.decode(String.self, forKey: .path)
        format = try c.decodeIfPresent(String.self, forKey: .format)
        bus = try VMDefinition.decodeEnum(c, .bus, or: .virtioSCSI)
        readOnly = try c.value(.readOnly, or: false)
    }
}

/// Direct kernel boot: QEMU loads the kernel (and initrd) instead of the firmware's boot menu.
public struct DirectBoot: Sendable, Equatable, Codable {
    public var kernel: String
    public var initrd: String?
    public var append: String?

    public init(kernel: String, initrd: String? = nil, append: String? = nil) {
        self.kernel = kernel
        self.initrd = initrd
        self.append = append
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case kernel, initrd, append }

    public init(from decoder: Decoder) throws {
        let c = try decoder.strictContainer(keyedBy: CodingKeys.self)
        kernel = try c.decode(String.self, forKey: .kernel)
        initrd = try c.decodeIfPresent(String.self, forKey: .initrd)
        append = try c.decodeIfPresent(String.self, forKey: .append)
    }
}

public enum NetworkMode: String, Sendable, Codable, CaseIterable {
    case none
    /// QEMU user-mode networking (slirp/passt): no host setup, port forwards for inbound.
    case user
}

/// A host port forwarded to a guest port, written "2222:22" or "udp:5353:53".
public struct PortForward: Sendable, Equatable, Hashable, Codable, CustomStringConvertible {
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

    public init(from decoder: Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let forward = PortForward(parsing: text) else {
            throw DefinitionError.invalidValue(file: nil, field: fieldPath(decoder.codingPath), value: text, allowed: Self.syntax)
        }
        self = forward
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

public struct Network: Sendable, Equatable, Codable {
    public var mode: NetworkMode
    public var forwards: [PortForward]

    public init(mode: NetworkMode = .none, forwards: [PortForward] = []) {
        self.mode = mode
        self.forwards = forwards
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case mode, forwards }

    public init(from decoder: Decoder) throws {
        let c = try decoder.strictContainer(keyedBy: CodingKeys.self)
        mode = try VMDefinition.decodeEnum(c, .mode, or: .none)
        forwards = try c.value(.forwards, or: [])
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
public struct SEVSettings: Sendable, Equatable, Codable {
    /// nil: 0x1 for SEV, 0x5 for SEV-ES.
    public var policy: SEVPolicy?
    /// Measured direct boot: QEMU adds the kernel/initrd/cmdline hashes to the firmware.
    public var kernelHashes: Bool

    public init(policy: SEVPolicy? = nil, kernelHashes: Bool = false) {
        self.policy = policy
        self.kernelHashes = kernelHashes
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case policy, kernelHashes }

    public init(from decoder: Decoder) throws {
        let c = try decoder.strictContainer(keyedBy: CodingKeys.self)
        policy = try c.decodeIfPresent(SEVPolicy.self, forKey: .policy)
        kernelHashes = try c.value(.kernelHashes, or: false)
    }
}

/// SEV-SNP settings (the `sev-snp-guest` object).
public struct SNPSettings: Sendable, Equatable, Codable {
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

    public init(from decoder: Decoder) throws {
        let c = try decoder.strictContainer(keyedBy: CodingKeys.self)
        policy = try c.value(.policy, or: .default)
        hostData = try c.decodeIfPresent(String.self, forKey: .hostData)
        idBlock = try c.decodeIfPresent(String.self, forKey: .idBlock)
        idAuth = try c.decodeIfPresent(String.self, forKey: .idAuth)
        authorKeyEnabled = try c.value(.authorKeyEnabled, or: false)
        vcekDisabled = try c.value(.vcekDisabled, or: false)
        guestVisibleWorkarounds = try c.decodeIfPresent(String.self, forKey: .guestVisibleWorkarounds)
        kernelHashes = try c.value(.kernelHashes, or: false)
    }
}

/// Files sevvm made for a VM (paths as stored in the definition); `rm` deletes only these.
public struct CreatedFiles: Sendable, Equatable, Codable {
    public var disks: [String]
    /// The per-VM copy of OVMF_VARS for split firmware (SEV, SEV-ES, no encryption).
    public var varsCopy: String?

    public init(disks: [String] = [], varsCopy: String? = nil) {
        self.disks = disks
        self.varsCopy = varsCopy
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case disks, varsCopy }

    public init(from decoder: Decoder) throws {
        let c = try decoder.strictContainer(keyedBy: CodingKeys.self)
        disks = try c.value(.disks, or: [])
        varsCopy = try c.decodeIfPresent(String.self, forKey: .varsCopy)
    }
}
