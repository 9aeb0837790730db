// Definition + host facts -> QEMU argv: the options AMD's launch-qemu.sh builds, per encryption mode.
import Definitions
import FoundationEssentials
import HostProbe
import QMP
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// Why a plan is made: a real launch refuses what cannot work; a dry run warns instead so the
/// user can still see the command.
public enum PlanPurpose: Sendable {
    case launch
    case dryRun
}

public enum LaunchPlanner {
    /// The oldest QEMU that can launch each mode (AMD's "Upstream Version Reference").
    public static func minimumQEMU(for mode: GuestMode) -> QEMUVersion {
        switch mode {
        case .none: return QEMUVersion(major: 2, minor: 0, micro: 0)
        case .sev: return QEMUVersion(major: 2, minor: 12, micro: 0)
        case .sevES: return QEMUVersion(major: 6, minor: 0, micro: 0)
        case .snp: return QEMUVersion(major: 9, minor: 1, micro: 0)
        }
    }

    /// The id of the confidential-guest-support object and of the memory backend.
    static let guestObjectID = "sev0"
    static let memoryBackendID = "ram1"

    /// Builds the plan. `mode` and `accel` override the definition's (from `start --snp`,
    /// `--accel`). Deterministic: the only file it reads are the SNP ID block and ID auth files
    /// the definition names (their contents go into the argv).
    public static func plan(
        for definition: VMDefinition, mode: GuestMode?, accel: String?, host: SEVHostFacts, qemu: QEMUInstallation,
        firmware: FirmwareChoice?, workspace: Workspace, purpose: PlanPurpose = .launch
    ) throws -> LaunchPlan {
        let mode = mode ?? definition.mode
        let accelName = accel ?? definition.accel.rawValue
        guard let accelerator = Accelerator(rawValue: accelName) else { throw LaunchError.unknownAccelerator(accelName) }
        var warnings = DefinitionStore.warnings(for: definition)
        let minimum = minimumQEMU(for: mode)
        if qemu.version < minimum {
            throw LaunchError.qemuTooOld(mode: mode, found: qemu.version.description, required: minimum.description, path: qemu.path)
        }
        if mode.isEncrypted, accelerator != .kvm {
            guard purpose == .dryRun else { throw LaunchError.encryptionNeedsKVM(mode: mode) }
            warnings.append(LaunchError.encryptionNeedsKVM(mode: mode).description)
        }

        var builder = ArgumentBuilder(definition: definition, workspace: workspace)
        let encrypted = mode.isEncrypted
        let needsBackend = mode == .snp || definition.hugepages

        var machine = [definition.machine]
        if encrypted { machine += ["confidential-guest-support=\(guestObjectID)", "vmport=off"] }
        if needsBackend { machine.append("memory-backend=\(memoryBackendID)") }
        builder.add("-nodefaults")
        builder.add("-machine", machine.joined(separator: ","))
        builder.add("-accel", accelerator.rawValue)
        builder.add("-cpu", definition.cpu)
        builder.add("-smp", String(definition.vcpus))
        builder.add("-m", "\(definition.memoryMiB)M")
        if needsBackend { builder.add("-object", memoryBackend(definition, mode: mode)) }

        if encrypted {
            let (object, objectWarnings) = try guestObject(definition, mode: mode, host: host, workspace: workspace, purpose: purpose)
            builder.add("-object", object)
            warnings += objectWarnings
        }

        let varsCopy = try addFirmware(&builder, definition: definition, mode: mode, firmware: firmware, workspace: workspace)
        if let firmware, firmware.singleFile, mode != .snp {
            warnings.append("\(firmware.code) is single-file firmware: UEFI variables (boot entries) will not persist across boots")
        }
        builder.addDirectBoot()
        builder.addStorage(modern: encrypted)
        builder.addNetwork(modern: encrypted)
        for address in definition.pciPassthrough { builder.add("-device", "vfio-pci,host=\(address)") }
        if encrypted { builder.add("-no-reboot") }
        builder.arguments += definition.extraArgs
        return LaunchPlan(
            qemu: qemu, arguments: builder.arguments, firmware: firmware, mode: mode, accel: accelerator.rawValue, warnings: warnings,
            varsCopy: varsCopy, definition: definition)
    }

    /// memfd backs guest RAM for SNP (QEMU adds guest_memfd for private memory itself) and for
    /// huge pages.
    static func memoryBackend(_ definition: VMDefinition, mode: GuestMode) -> String {
        var options = ["memory-backend-memfd", "id=\(memoryBackendID)", "size=\(definition.memoryMiB)M", "share=true"]
        if definition.hugepages { options += ["hugetlb=on", "hugetlbsize=2M"] }
        options.append("prealloc=false")
        return options.joined(separator: ",")
    }

    /// The sev-guest or sev-snp-guest object with every property the definition sets.
    static func guestObject(
        _ definition: VMDefinition, mode: GuestMode, host: SEVHostFacts, workspace: Workspace, purpose: PlanPurpose
    ) throws -> (String, [String]) {
        var warnings: [String] = []
        var options: [String]
        switch mode {
        case .snp:
            options = ["sev-snp-guest", "id=\(guestObjectID)", "policy=\(definition.snp.policy)"]
        default:
            var policy = definition.sev.policy ?? (mode == .sevES ? .sevESDefault : .sevDefault)
            let es = SEVPolicy.Flag.encryptedState.bit
            if mode == .sevES, policy.rawValue & es == 0 {
                policy.rawValue |= es
                warnings.append("SEV-ES needs the ES bit (0x4) in the guest policy; using \(policy)")
            } else if mode == .sev, policy.rawValue & es != 0 {
                policy.rawValue &= ~es
                warnings.append("the policy's ES bit asks for SEV-ES but the mode is SEV; using \(policy)")
            }
            options = ["sev-guest", "id=\(guestObjectID)", "policy=\(policy)"]
        }
        // Both come from CPUID 0x8000001F unless the definition overrides them.
        let addressing: [(String, Int?, LaunchError)] = [
            ("cbitpos", definition.cbitpos ?? host.cbitpos, .cbitposUnknown(mode: mode)),
            ("reduced-phys-bits", definition.reducedPhysBits ?? host.reducedPhysBits, .reducedPhysBitsUnknown(mode: mode)),
        ]
        for (property, value, missing) in addressing {
            if let value {
                options.append("\(property)=\(value)")
            } else if purpose == .dryRun {
                warnings.append(missing.description)
            } else {
                throw missing
            }
        }
        if mode == .snp {
            let snp = definition.snp
            if let workarounds = snp.guestVisibleWorkarounds { options.append("guest-visible-workarounds=\(workarounds)") }
            if let idBlock = snp.idBlock {
                let data = try readBinary(idBlock, field: "snp.idBlock", workspace: workspace)
                guard data.count == SNPSettings.idBlockLength else {
                    throw LaunchError.wrongLength(field: "snp.idBlock", path: idBlock, length: data.count, allowed: "exactly 96 bytes")
                }
                options.append("id-block=\(data.base64EncodedString())")
            }
            if let idAuth = snp.idAuth {
                let data = try readBinary(idAuth, field: "snp.idAuth", workspace: workspace)
                guard (1...SNPSettings.idAuthMaximumLength).contains(data.count) else {
                    throw LaunchError.wrongLength(field: "snp.idAuth", path: idAuth, length: data.count, allowed: "1 to 4096 bytes")
                }
                options.append("id-auth=\(data.base64EncodedString())")
            }
            if let hostData = snp.hostData { options.append("host-data=\(hostData)") }
            if snp.authorKeyEnabled { options.append("author-key-enabled=on") }
            if snp.vcekDisabled { options.append("vcek-disabled=on") }
            if snp.kernelHashes { options.append("kernel-hashes=on") }
        } else if definition.sev.kernelHashes {
            options.append("kernel-hashes=on")
        }
        return (options.joined(separator: ","), warnings)
    }

    /// The ID block / ID auth file: raw bytes, or base64 text of them (as tools write either).
    static func readBinary(_ path: String, field: String, workspace: Workspace) throws -> Data {
        let resolved = workspace.resolve(path)
        guard let data = FileManager.default.contents(atPath: resolved) else {
            throw LaunchError.unreadableFile(field: field, path: resolved)
        }
        let text = String(decoding: data, as: UTF8.self).trimmingWhitespace
        if data.count != SNPSettings.idBlockLength, data.count != SNPSettings.idAuthMaximumLength,
            let decoded = Data(base64Encoded: text), !decoded.isEmpty
        {
            return decoded
        }
        return data
    }

    /// SNP: single-file OVMF with -bios. SEV/SEV-ES/none with split firmware: read-only code on
    /// pflash unit 0 and the VM's own vars copy on unit 1. Returns the vars copy path.
    static func addFirmware(
        _ builder: inout ArgumentBuilder, definition: VMDefinition, mode: GuestMode, firmware: FirmwareChoice?, workspace: Workspace
    ) throws -> String? {
        guard let firmware else {
            if mode.isEncrypted { throw LaunchError.firmwareMissing(mode: mode) }
            return nil  // SeaBIOS, QEMU's default
        }
        if mode == .snp {
            guard firmware.singleFile else { throw LaunchError.snpNeedsSingleFileFirmware(path: firmware.code) }
            guard firmware.hasSEVMetadata else { throw LaunchError.firmwareLacksSEVMetadata(path: firmware.code) }
        }
        let kernelHashes = mode == .snp ? definition.snp.kernelHashes : (mode.isEncrypted && definition.sev.kernelHashes)
        if kernelHashes, !firmware.hasHashesTable { throw LaunchError.firmwareLacksHashesTable(path: firmware.code) }
        if firmware.singleFile {
            builder.add("-bios", firmware.code)
            return nil
        }
        let vars = workspace.resolve(definition.created.varsCopy ?? DefinitionStore.varsCopyPath(for: definition.name))
        builder.add("-drive", "if=pflash,format=raw,unit=0,file=\(ArgumentBuilder.escape(firmware.code)),readonly=on")
        builder.add("-drive", "if=pflash,format=raw,unit=1,file=\(ArgumentBuilder.escape(vars))")
        return vars
    }
}

/// Accumulates argv words for one definition.
struct ArgumentBuilder {
    let definition: VMDefinition
    let workspace: Workspace
    var arguments: [String] = []

    init(definition: VMDefinition, workspace: Workspace) {
        self.definition = definition
        self.workspace = workspace
    }

    mutating func add(_ words: String...) { arguments += words }

    /// A value inside a QEMU option list: commas are doubled.
    static func escape(_ value: String) -> String { value.replacing(",", with: ",,") }

    /// Options that make a virtio device usable by an encrypted guest (modern only, DMA through the DMA API).
    private func virtio(_ device: String, modern: Bool) -> String {
        modern ? device + ",disable-legacy=on,iommu_platform=true" : device
    }

    mutating func addDirectBoot() {
        guard let boot = definition.directBoot else { return }
        add("-kernel", workspace.resolve(boot.kernel))
        if let initrd = boot.initrd { add("-initrd", workspace.resolve(initrd)) }
        if let append = boot.append { add("-append", append) }
    }

    /// Disks on virtio-scsi (scsi-hd) unless they ask for virtio-blk; the CD-ROM on the same controller.
    mutating func addStorage(modern: Bool) {
        let needsSCSI = definition.cdrom != nil || definition.disks.contains { $0.bus == .virtioSCSI }
        if needsSCSI { add("-device", virtio("virtio-scsi-pci,id=scsi0", modern: modern)) }
        var bootIndex = 1
        for (index, disk) in definition.disks.enumerated() {
            var drive = ["file=\(Self.escape(workspace.resolve(disk.path)))", "if=none", "id=disk\(index)"]
            if let format = disk.format { drive.append("format=\(format)") }
            if disk.readOnly { drive.append("readonly=on") }
            add("-drive", drive.joined(separator: ","))
            switch disk.bus {
            case .virtioSCSI: add("-device", "scsi-hd,drive=disk\(index),bus=scsi0.0,bootindex=\(bootIndex)")
            case .virtioBlk: add("-device", virtio("virtio-blk-pci,drive=disk\(index)", modern: modern) + ",bootindex=\(bootIndex)")
            }
            bootIndex += 1
        }
        if let cdrom = definition.cdrom {
            add("-drive", "file=\(Self.escape(workspace.resolve(cdrom))),if=none,id=cdrom0,media=cdrom,readonly=on")
            add("-device", "scsi-cd,drive=cdrom0,bus=scsi0.0,bootindex=\(bootIndex)")
        }
    }

    mutating func addNetwork(modern: Bool) {
        guard definition.network.mode == .user else { return }
        var netdev = ["user", "id=net0"]
        for forward in definition.network.forwards {
            netdev.append("hostfwd=\(forward.transport.rawValue)::\(forward.hostPort)-:\(forward.guestPort)")
        }
        add("-netdev", netdev.joined(separator: ","))
        // No option ROM: iPXE is of no use to an encrypted guest and is not measured.
        add("-device", virtio("virtio-net-pci,netdev=net0", modern: modern) + (modern ? ",romfile=" : ""))
    }
}

extension LaunchPlanner {
    /// Discovers what the plan needs on this host (QEMU: the workspace build, then PATH;
    /// firmware: the definition's path or discovery; SEV facts from CPUID) and plans. Unencrypted
    /// guests with `firmware: auto` boot QEMU's default SeaBIOS. Errors are HostProbe's
    /// discovery errors or LaunchError.
    public static func discoverAndPlan(
        for definition: VMDefinition, mode: GuestMode?, accel: String?, workspace: Workspace, qemuPath: String? = nil,
        purpose: PlanPurpose = .launch
    ) throws -> LaunchPlan {
        let mode = mode ?? definition.mode
        let qemu = try QEMUDiscovery.find(workspace: workspace, explicitPath: qemuPath)
        var firmware: FirmwareChoice?
        if mode.isEncrypted || definition.firmware.explicitPath != nil {
            let explicit = definition.firmware.explicitPath.map(workspace.resolve)
            firmware = try FirmwareDiscovery.find(for: mode, workspace: workspace, explicitPath: explicit)
        }
        let host = mode.isEncrypted ? probeSEVHostFacts() : SEVHostFacts()
        return try plan(
            for: definition, mode: mode, accel: accel, host: host, qemu: qemu, firmware: firmware, workspace: workspace, purpose: purpose)
    }
}
