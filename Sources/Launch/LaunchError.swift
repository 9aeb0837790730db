// The one error type of the Launch target: why a definition cannot become a QEMU command line, and what to do.
import Definitions
import FoundationEssentials
import Support

#if canImport(Glibc)
    import Glibc
#endif

public enum LaunchError: Error, CustomStringConvertible, Equatable {
    case qemuTooOld(mode: GuestMode, found: String, required: String, path: String)
    case encryptionNeedsKVM(mode: GuestMode)
    case firmwareMissing(mode: GuestMode)
    case snpNeedsSingleFileFirmware(path: String)
    case firmwareLacksSEVMetadata(path: String)
    case firmwareLacksHashesTable(path: String)
    case cbitposUnknown(mode: GuestMode)
    case reducedPhysBitsUnknown(mode: GuestMode)
    case unknownAccelerator(String)
    case unreadableFile(field: String, path: String)
    case wrongLength(field: String, path: String, length: Int, allowed: String)
    case varsCopyFailed(path: String, reason: String)

    public var description: String {
        switch self {
        case .qemuTooOld(let mode, let found, let required, let path):
            return "\(mode.displayName) needs QEMU \(required) or newer, but \(path) is \(found); "
                + "build a newer one with `sevvm build qemu` (it is used automatically) or pass --qemu PATH"
        case .encryptionNeedsKVM(let mode):
            return "\(mode.displayName) needs KVM (the CPU encrypts the guest); use --accel kvm, or --no-sev to run unencrypted under TCG"
        case .firmwareMissing(let mode):
            return "\(mode.displayName) needs OVMF firmware and none was found; install the ovmf package, run `sevvm build ovmf`, "
                + "or set one with `sevvm edit NAME --set firmware=/path/OVMF.fd`"
        case .snpNeedsSingleFileFirmware(let path):
            return "SEV-SNP needs a single-file OVMF (OVMF.fd, given with -bios) but \(path) is split code/vars firmware "
                + "(with it QEMU fails with KVM_SET_USER_MEMORY_REGION2 ... Invalid argument); "
                + "use /usr/share/ovmf/OVMF.fd or the OVMF.fd from `sevvm build ovmf`"
        case .firmwareLacksSEVMetadata(let path):
            return "\(path) has no SEV metadata, so an SNP launch fails with 'Failed to locate SEV metadata header'; "
                + "use an OVMF built with SEV support (`sevvm build ovmf`)"
        case .firmwareLacksHashesTable(let path):
            return "kernel-hashes (measured direct boot) needs an OVMF with a kernel hashes table, which \(path) lacks; "
                + "build OvmfPkg/AmdSev/AmdSevX64.dsc (`sevvm build ovmf`) or turn kernelHashes off"
        case .cbitposUnknown(let mode):
            return "\(mode.displayName) needs the C-bit position, but this host does not report SEV (CPUID 0x8000001F); "
                + "check the host with `sevvm caps`, or set it with `sevvm edit NAME --set cbitpos=51` (47 on Milan, 51 on Genoa/Turin)"
        case .reducedPhysBitsUnknown(let mode):
            return "\(mode.displayName) needs the physical address reduction, but this host does not report SEV; "
                + "check the host with `sevvm caps`, or set it with `sevvm edit NAME --set reducedPhysBits=1`"
        case .unknownAccelerator(let name):
            return "unknown accelerator '\(name)'; use kvm or tcg"
        case .unreadableFile(let field, let path):
            return "\(field): cannot read \(path); fix the path with `sevvm edit NAME --set \(field)=PATH`"
        case .wrongLength(let field, let path, let length, let allowed):
            return "\(field): \(path) holds \(length) bytes, but QEMU needs \(allowed)"
        case .varsCopyFailed(let path, let reason):
            return "could not make the VM's UEFI variables file \(path): \(reason)"
        }
    }
}
