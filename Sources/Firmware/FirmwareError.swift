// FirmwareError: every way a firmware image can be unusable, with what to do about it.
import FoundationEssentials

#if canImport(Glibc)
    import Glibc
#endif

public enum FirmwareError: Error, CustomStringConvertible, Equatable {
    case unreadable(path: String, errno: Int32)
    case notOVMF(path: String, reason: String)
    case truncated(path: String, size: Int, needed: Int, what: String)
    case malformedFooterTable(path: String, reason: String)
    case malformedSEVMetadata(path: String, reason: String)

    public var description: String {
        switch self {
        case .unreadable(let path, let code):
            return "cannot read firmware \(path): \(String(cString: strerror(code)))"
        case .notOVMF(let path, let reason):
            return "\(path) is not an OVMF firmware image (\(reason)); give an OVMF build such as "
                + "/usr/share/ovmf/OVMF.fd, /usr/share/OVMF/OVMF_CODE_4M.fd or AMD's single-file OVMF.fd (OvmfPkg/AmdSev)"
        case .truncated(let path, let size, let needed, let what):
            return "\(path) looks truncated: \(what) needs \(needed) bytes but the file has \(size); "
                + "copy the firmware again from its package or build"
        case .malformedFooterTable(let path, let reason):
            return "\(path) has a damaged OVMF footer GUID table (\(reason)); rebuild or reinstall the firmware"
        case .malformedSEVMetadata(let path, let reason):
            return "\(path) has damaged SEV metadata (\(reason)); rebuild or reinstall the firmware"
        }
    }
}
