// MeasureError: why a launch digest or an attestation report could not be computed or trusted.
import FoundationEssentials
import Support

#if canImport(Glibc)
    import Glibc
#endif

public enum MeasureError: Error, CustomStringConvertible, Equatable {
    case unsupportedMode(GuestMode)
    case noVCPUs
    case unknownVCPUType(name: String, allowed: [String])
    case missingVCPUSignature(mode: GuestMode)
    case incompleteVCPUFamily(missing: String)
    case unknownVMMType(name: String)
    case invalidNumber(option: String, value: String)
    case missingResetBlock(path: String)
    case noSEVMetadata(path: String)
    case firmwareNotPageAligned(path: String, size: Int)
    case noHashesTable(path: String, mode: GuestMode)
    case unknownSectionKind(path: String, value: UInt32)
    case badHashesSection(path: String, reason: String)
    case invalidOVMFHash(String)
    case ovmfHashNeedsSNP(GuestMode)
    case initrdOrAppendWithoutKernel
    case unreadable(path: String, errno: Int32)
    case reportSize(actual: Int)
    case reportNotHex(path: String, reason: String)
    case certificate(path: String, reason: String)
    case signatureInvalid(reason: String)

    public var description: String {
        switch self {
        case .unsupportedMode(let mode):
            return "mode \(mode) has no launch measurement; use snp, sev-es or sev"
        case .noVCPUs:
            return "a guest needs at least 1 vCPU (got 0); give --vcpus N with N >= 1"
        case .unknownVCPUType(let name, let allowed):
            return "unknown vCPU type '\(name)'; known types: \(allowed.joined(separator: ", ")) "
                + "(or give --vcpu-sig, or --vcpu-family/--vcpu-model/--vcpu-stepping)"
        case .missingVCPUSignature(let mode):
            return "mode \(mode) measures the vCPU signature: give --vcpu-type, --vcpu-sig or --vcpu-family/--vcpu-model/--vcpu-stepping"
        case .incompleteVCPUFamily(let missing):
            return "--vcpu-family needs --vcpu-model and --vcpu-stepping too (missing \(missing))"
        case .unknownVMMType(let name):
            return "unknown VMM type '\(name)'; use qemu, ec2 or gce"
        case .invalidNumber(let option, let value):
            return "\(option) '\(value)' is not a number (decimal, or hexadecimal with 0x)"
        case .missingResetBlock(let path):
            return "\(path) has no SEV-ES reset block in its footer table, so SEV-ES/SNP vCPUs cannot start from it; "
                + "use an OVMF built with SEV support (edk2-stable202405 or newer, AMD's single-file OvmfPkg/AmdSev OVMF.fd)"
        case .noSEVMetadata(let path):
            return "\(path) has no SEV metadata, so QEMU cannot launch an SNP guest from it and no SNP digest exists; "
                + "use an OVMF with SEV-SNP support (edk2-stable202405 or newer): AMD's single-file OvmfPkg/AmdSev OVMF.fd, "
                + "or Debian's /usr/share/ovmf/OVMF.fd"
        case .firmwareNotPageAligned(let path, let size):
            return "\(path) is \(size) bytes, not a whole number of 4096-byte pages; it cannot be an OVMF flash image"
        case .noHashesTable(let path, let mode):
            if mode == .snp {
                return "\(path) has no SNP kernel-hashes section in its SEV metadata, so a kernel, initrd and command line "
                    + "cannot be measured; build AMD's single-file OVMF (OvmfPkg/AmdSev, edk2-stable202405 or newer) or boot without --kernel"
            }
            return "\(path) does not reserve a page for the kernel hashes table, so a kernel, initrd and command line cannot be "
                + "measured; build AMD's OvmfPkg/AmdSev OVMF (edk2-stable202405 or newer) or boot without --kernel"
        case .unknownSectionKind(let path, let value):
            return "\(path) declares an SEV metadata section of kind \(value), which sevvm does not know how to measure"
        case .badHashesSection(let path, let reason):
            return "\(path) has an unusable kernel hashes area (\(reason)); rebuild the firmware from edk2's OvmfPkg/AmdSev"
        case .invalidOVMFHash(let text):
            return "--snp-ovmf-hash '\(text)' is not 96 hexadecimal digits (a SHA-384 digest)"
        case .ovmfHashNeedsSNP(let mode):
            return "a precalculated OVMF hash only applies to snp, not \(mode)"
        case .initrdOrAppendWithoutKernel:
            return "--initrd and --append are measured only together with --kernel; add --kernel FILE"
        case .unreadable(let path, let code):
            return "cannot read \(path): \(String(cString: strerror(code)))"
        case .reportSize(let actual):
            return "an SEV-SNP attestation report is \(SNPAttestationReport.size) bytes, this one is \(actual); "
                + "give the raw report (e.g. from `snpguest report`) or its hex text"
        case .reportNotHex(let path, let reason):
            return "\(path) is neither a \(SNPAttestationReport.size)-byte binary report nor hex text (\(reason))"
        case .certificate(let path, let reason):
            return "\(path) is not a usable VCEK certificate (\(reason)); give the DER certificate from AMD's KDS or `snpguest fetch vcek`"
        case .signatureInvalid(let reason):
            return "the report's signature does not verify (\(reason)): the report was altered or signed by another chip's VCEK"
        }
    }
}
