// The one error type of HostProbe: what could not be read or run, with the context to act on it.
import FoundationEssentials
import Support

#if canImport(Glibc)
    import Glibc
#endif

public enum HostProbeError: Error, CustomStringConvertible, Equatable {
    /// A device or file could not be opened or read (errno says why).
    case unreadable(path: String, operation: String, errno: Int32)
    /// An ioctl on /dev/sev failed; `firmwareError` is the PSP status the kernel passed back.
    case sevCommandFailed(path: String, command: String, errno: Int32, firmwareError: UInt32)
    /// The reply of a device was shorter or stranger than its documented layout.
    case malformed(source: String, reason: String)
    /// No qemu-system-x86_64 was found where sevvm looks.
    case qemuNotFound(searched: [String])
    /// A QEMU binary ran but did not say which version it is.
    case qemuVersionUnknown(path: String, output: String)
    /// No firmware fit the mode.
    case firmwareNotFound(mode: GuestMode, searched: [String], reason: String)
    /// An explicitly named firmware file does not fit the mode.
    case firmwareUnsuitable(path: String, mode: GuestMode, reason: String)
    /// The throw-away QEMU that answers query-sev-capabilities did not come up.
    case capabilityQEMUFailed(argv: [String], status: Int32?, stderr: String)
    /// A file named by an option could not be written.
    case exportFailed(path: String, reason: String)

    public var description: String {
        switch self {
        case .unreadable(let path, let operation, let code):
            let hint = code == EACCES || code == EPERM ? " (run as root to read it)" : ""
            return "could not \(operation) \(path): \(String(cString: strerror(code)))\(hint)"
        case .sevCommandFailed(let path, let command, let code, let firmwareError):
            let psp = firmwareError == 0 ? "" : ", firmware error \(SEVFirmwareError.describe(firmwareError))"
            return "\(command) on \(path) failed: \(String(cString: strerror(code)))\(psp)"
        case .malformed(let source, let reason):
            return "\(source): \(reason)"
        case .qemuNotFound(let searched):
            return "qemu-system-x86_64 was not found (looked at \(searched.joined(separator: ", "))); "
                + "run `sevvm build qemu`, install your distribution's QEMU, or pass --qemu PATH"
        case .qemuVersionUnknown(let path, let output):
            return "\(path) --version did not print a QEMU version (got: \(output.prefix(120))); is it really QEMU?"
        case .firmwareNotFound(let mode, let searched, let reason):
            return "no OVMF firmware for \(mode.displayName) (\(reason)); looked at \(searched.joined(separator: ", ")); "
                + "run `sevvm build ovmf` or install the ovmf package, or pass --firmware PATH"
        case .firmwareUnsuitable(let path, let mode, let reason):
            return "\(path) cannot boot a \(mode.displayName) guest: \(reason)"
        case .capabilityQEMUFailed(let argv, let status, let stderr):
            let how = status.map { "exited with status \($0)" } ?? "did not open its QMP socket in time"
            let said = stderr.isEmpty ? "" : ": \(stderr.trimmingWhitespace)"
            return "the probe QEMU (\(argv.joined(separator: " "))) \(how)\(said)"
        case .exportFailed(let path, let reason):
            return "could not write \(path): \(reason)"
        }
    }
}
