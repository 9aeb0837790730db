// Decoded answers of /dev/sev's PLATFORM_STATUS and SNP_PLATFORM_STATUS, and the PSP's error codes.
import FoundationEssentials

#if canImport(Glibc)
    import Glibc
#endif

/// The SEV platform's life cycle as PLATFORM_STATUS reports it.
public enum SEVPlatformState: String, Sendable, Codable {
    case uninitialized, initialized, working, unknown

    init(code: UInt8) {
        switch code {
        case 0: self = .uninitialized
        case 1: self = .initialized
        case 2: self = .working
        default: self = .unknown
        }
    }
}

/// PLATFORM_STATUS (command 1): 12 packed bytes.
public struct SEVPlatformStatus: Sendable, Equatable, Codable {
    static let size = 12
    public var apiMajor: UInt8
    public var apiMinor: UInt8
    public var state: SEVPlatformState
    public var flags: UInt32
    public var build: UInt8
    public var guestCount: UInt32

    /// Bit 8 of the flags: SEV-ES was initialized (the kernel does it with SEV_INIT_EX).
    public var sevESInitialized: Bool { flags & (1 << 8) != 0 }
    /// Bit 0: the platform is owned externally (no self-signed PEK).
    public var externallyOwned: Bool { flags & 1 != 0 }
    public var firmwareVersion: String { "\(apiMajor).\(apiMinor) build \(build)" }

    public init(bytes: [UInt8]) throws {
        guard bytes.count >= Self.size else {
            throw HostProbeError.malformed(source: "PLATFORM_STATUS", reason: "\(bytes.count) bytes, expected \(Self.size)")
        }
        apiMajor = bytes[0]
        apiMinor = bytes[1]
        state = SEVPlatformState(code: bytes[2])
        flags = bytes.littleEndianUInt32(at: 3)
        build = bytes[7]
        guestCount = bytes.littleEndianUInt32(at: 8)
    }
}

/// SNP_PLATFORM_STATUS (command 9): 32 packed bytes.
public struct SNPPlatformStatus: Sendable, Equatable, Codable {
    static let size = 32
    public var apiMajor: UInt8
    public var apiMinor: UInt8
    public var state: SEVPlatformState
    public var rmpInitialized: Bool
    public var aliasCheckComplete: Bool
    public var buildID: UInt32
    public var featureFlags: UInt32
    public var guestCount: UInt32
    public var currentTCB: UInt64
    public var reportedTCB: UInt64

    public var firmwareVersion: String { "\(apiMajor).\(apiMinor) build \(buildID)" }
    /// SNP needs firmware 1.51 (0x33) or newer (seed README).
    public var meetsMinimumFirmware: Bool { (Int(apiMajor), Int(apiMinor)) >= (1, 51) }

    public init(bytes: [UInt8]) throws {
        guard bytes.count >= Self.size else {
            throw HostProbeError.malformed(source: "SNP_PLATFORM_STATUS", reason: "\(bytes.count) bytes, expected \(Self.size)")
        }
        apiMajor = bytes[0]
        apiMinor = bytes[1]
        state = SEVPlatformState(code: bytes[2])
        rmpInitialized = bytes[3] & 1 != 0
        aliasCheckComplete = bytes[3] & 2 != 0
        buildID = bytes.littleEndianUInt32(at: 4)
        featureFlags = bytes.littleEndianUInt32(at: 8)
        guestCount = bytes.littleEndianUInt32(at: 12)
        currentTCB = bytes.littleEndianUInt64(at: 16)
        reportedTCB = bytes.littleEndianUInt64(at: 24)
    }
}

/// An SNP TCB version split into its security patch levels (AMD's layout for Milan and Genoa).
public struct TCBVersion: Sendable, Equatable, Codable, CustomStringConvertible {
    public var bootloader: UInt8
    public var tee: UInt8
    public var snp: UInt8
    public var microcode: UInt8

    public init(_ raw: UInt64) {
        bootloader = UInt8(truncatingIfNeeded: raw)
        tee = UInt8(truncatingIfNeeded: raw >> 8)
        snp = UInt8(truncatingIfNeeded: raw >> 48)
        microcode = UInt8(truncatingIfNeeded: raw >> 56)
    }

    public var description: String { "bootloader \(bootloader), TEE \(tee), SNP \(snp), microcode \(microcode)" }
}

/// Status codes of the AMD Secure Processor (SEV API specification, "Status Codes").
public enum SEVFirmwareError {
    static let names: [UInt32: String] = [
        0x01: "INVALID_PLATFORM_STATE", 0x02: "INVALID_GUEST_STATE", 0x03: "INVALID_CONFIG", 0x04: "INVALID_LENGTH",
        0x05: "ALREADY_OWNED", 0x06: "INVALID_CERTIFICATE", 0x07: "POLICY_FAILURE", 0x08: "INACTIVE",
        0x09: "INVALID_ADDRESS", 0x0A: "BAD_SIGNATURE", 0x0B: "BAD_MEASUREMENT", 0x0C: "ASID_OWNED",
        0x0D: "INVALID_ASID", 0x0E: "WBINVD_REQUIRED", 0x0F: "DF_FLUSH_REQUIRED", 0x10: "INVALID_GUEST",
        0x11: "INVALID_COMMAND", 0x12: "ACTIVE", 0x13: "HWERROR_PLATFORM", 0x14: "HWERROR_UNSAFE",
        0x15: "UNSUPPORTED", 0x16: "INVALID_PARAM", 0x17: "RESOURCE_LIMIT", 0x18: "SECURE_DATA_INVALID",
    ]

    /// "0x13 (HWERROR_PLATFORM)".
    public static func describe(_ code: UInt32) -> String {
        let hex = "0x" + String(code, radix: 16)
        return names[code].map { "\(hex) (\($0))" } ?? hex
    }
}

extension Array where Element == UInt8 {
    func littleEndianUInt32(at offset: Int) -> UInt32 {
        (0..<4).reduce(UInt32(0)) { $0 | UInt32(self[offset + $1]) << (8 * UInt32($1)) }
    }

    func littleEndianUInt64(at offset: Int) -> UInt64 {
        (0..<8).reduce(UInt64(0)) { $0 | UInt64(self[offset + $1]) << (8 * UInt64($1)) }
    }

    func littleEndianUInt16(at offset: Int) -> UInt16 {
        UInt16(self[offset]) | UInt16(self[offset + 1]) << 8
    }
}
