// The protocols through which HostProbe reads CPUID, MSRs, /dev/sev and /dev/kvm, with their real implementations.
import CShims
import FoundationEssentials

#if canImport(Glibc)
    import Glibc
#endif

/// The four registers one CPUID leaf returns.
public struct CPUIDRegisters: Sendable, Equatable, Codable {
    public var eax: UInt32
    public var ebx: UInt32
    public var ecx: UInt32
    public var edx: UInt32

    public init(eax: UInt32, ebx: UInt32, ecx: UInt32, edx: UInt32) {
        self.eax = eax
        self.ebx = ebx
        self.ecx = ecx
        self.edx = edx
    }
}

/// Where CPUID answers come from: the CPU itself, or a fixture in tests.
public protocol CPUIDSource: Sendable {
    /// nil when the leaf is above the CPU's maximum.
    func cpuid(leaf: UInt32, subleaf: UInt32) -> CPUIDRegisters?
}

/// The CPU this process runs on, through CShims' `sevvm_cpuid`.
public struct NativeCPUID: CPUIDSource {
    public init() {}

    public func cpuid(leaf: UInt32, subleaf: UInt32) -> CPUIDRegisters? {
        var a: UInt32 = 0
        var b: UInt32 = 0
        var c: UInt32 = 0
        var d: UInt32 = 0
        guard sevvm_cpuid(leaf, subleaf, &a, &b, &c, &d) == 1 else { return nil }
        return CPUIDRegisters(eax: a, ebx: b, ecx: c, edx: d)
    }
}

/// Model-specific registers of CPU 0.
public protocol MSRSource: Sendable {
    /// Throws `HostProbeError.unreadable` with the reason (no msr module, not root).
    func read(_ msr: UInt32) throws -> UInt64
}

/// /dev/cpu/0/msr under a root: the MSR number is the file offset of its 8 bytes.
public struct DeviceMSR: MSRSource {
    public let path: String

    public init(root: HostRoot = HostRoot()) {
        path = root.resolve("/dev/cpu/0/msr")
    }

    public func read(_ msr: UInt32) throws -> UInt64 {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw HostProbeError.unreadable(path: path, operation: "open", errno: errno) }
        defer { close(fd) }
        var value: UInt64 = 0
        let n = pread(fd, &value, 8, off_t(msr))
        guard n == 8 else {
            throw HostProbeError.unreadable(path: path, operation: "read MSR 0x\(String(msr, radix: 16)) from", errno: n < 0 ? errno : EIO)
        }
        return UInt64(littleEndian: value)
    }
}

/// The AMD Secure Processor driver (/dev/sev): the three status commands caps needs.
public protocol SEVDevice: Sendable {
    var path: String { get }
    var isPresent: Bool { get }
    func platformStatus() throws -> SEVPlatformStatus
    func snpPlatformStatus() throws -> SNPPlatformStatus
    /// GET_ID2: the chip's unique ID (64 bytes on Rome and later).
    func chipID() throws -> [UInt8]
}

/// /dev/sev under a root, driven with the SEV_ISSUE_CMD ioctl (include/uapi/linux/psp-sev.h).
public struct DeviceSEV: SEVDevice {
    public let path: String

    public init(root: HostRoot = HostRoot()) {
        path = root.resolve("/dev/sev")
    }

    public var isPresent: Bool { FileManager.default.fileExists(atPath: path) }

    public func platformStatus() throws -> SEVPlatformStatus {
        try SEVPlatformStatus(bytes: issue(command: 1, name: "PLATFORM_STATUS", replySize: SEVPlatformStatus.size))
    }

    public func snpPlatformStatus() throws -> SNPPlatformStatus {
        try SNPPlatformStatus(bytes: issue(command: 9, name: "SNP_PLATFORM_STATUS", replySize: SNPPlatformStatus.size))
    }

    public func chipID() throws -> [UInt8] {
        // GET_ID2 takes {u64 address, u32 length} (packed, 12 bytes) and fills the buffer at address.
        var id = [UInt8](repeating: 0, count: 64)
        var request = [UInt8](repeating: 0, count: 12)
        let length = try id.withUnsafeMutableBytes { buffer -> UInt32 in
            let address = UInt64(UInt(bitPattern: buffer.baseAddress))
            withUnsafeBytes(of: address.littleEndian) { request.replaceSubrange(0..<8, with: $0) }
            withUnsafeBytes(of: UInt32(64).littleEndian) { request.replaceSubrange(8..<12, with: $0) }
            _ = try issue(command: 8, name: "GET_ID2", payload: &request)
            return request[8..<12].enumerated().reduce(UInt32(0)) { $0 | UInt32($1.element) << (8 * UInt32($1.offset)) }
        }
        return Array(id.prefix(Int(min(length, 64))))
    }

    private func issue(command: UInt32, name: String, replySize: Int) throws -> [UInt8] {
        var reply = [UInt8](repeating: 0, count: replySize)
        _ = try issue(command: command, name: name, payload: &reply)
        return reply
    }

    /// Sends one command whose data pointer is `payload`; the kernel writes its answer into it.
    private func issue(command: UInt32, name: String, payload: inout [UInt8]) throws -> Int32 {
        let fd = open(path, O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { throw HostProbeError.unreadable(path: path, operation: "open", errno: errno) }
        defer { close(fd) }
        var firmwareError: UInt32 = 0
        let rc = payload.withUnsafeMutableBytes { buffer -> Int32 in
            var cmd = sevvm_sev_issue_cmd()
            cmd.cmd = command
            cmd.data = UInt64(UInt(bitPattern: buffer.baseAddress))
            cmd.error = 0
            let rc = sevvm_ioctl_ptr(fd, SEVVM_SEV_ISSUE_CMD, &cmd)
            firmwareError = cmd.error
            return rc
        }
        guard rc == 0 else {
            throw HostProbeError.sevCommandFailed(path: path, command: name, errno: errno, firmwareError: firmwareError)
        }
        return rc
    }
}

/// /dev/kvm: only its API version matters to caps (12 on every kernel since 2.6.22).
public protocol KVMDevice: Sendable {
    var path: String { get }
    func apiVersion() throws -> Int32
}

public struct DeviceKVM: KVMDevice {
    public let path: String

    public init(root: HostRoot = HostRoot()) {
        path = root.resolve("/dev/kvm")
    }

    public func apiVersion() throws -> Int32 {
        let fd = open(path, O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { throw HostProbeError.unreadable(path: path, operation: "open", errno: errno) }
        defer { close(fd) }
        let version = sevvm_ioctl_int(fd, SEVVM_KVM_GET_API_VERSION, 0)
        guard version >= 0 else { throw HostProbeError.unreadable(path: path, operation: "KVM_GET_API_VERSION on", errno: errno) }
        return version
    }
}
