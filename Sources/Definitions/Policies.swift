// SEV and SEV-SNP guest policies: bit layouts from AMD's SEV and SNP firmware ABI specifications.
import QMP

/// The SEV / SEV-ES guest policy (32 bits): bit 0 NODBG, 1 NOKS, 2 ES, 3 NOSEND, 4 DOMAIN, 5 SEV,
/// API major in bits 23:16 and minor in 31:24.
public struct SEVPolicy: Sendable, Equatable, Hashable, Codable, JSONReadable, CustomStringConvertible {
    public var rawValue: UInt32

    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public enum Flag: String, Sendable, CaseIterable {
        case noDebug = "nodbg"
        case noKeySharing = "noks"
        case encryptedState = "es"
        case noSend = "nosend"
        case domain
        case sev

        public var bit: UInt32 {
            switch self {
            case .noDebug: return 1 << 0
            case .noKeySharing: return 1 << 1
            case .encryptedState: return 1 << 2
            case .noSend: return 1 << 3
            case .domain: return 1 << 4
            case .sev: return 1 << 5
            }
        }
    }

    /// QEMU's defaults: debugging forbidden; SEV-ES adds the ES bit.
    public static let sevDefault = SEVPolicy(rawValue: 0x1)
    public static let sevESDefault = SEVPolicy(rawValue: 0x5)

    public func contains(_ flag: Flag) -> Bool { rawValue & flag.bit != 0 }
    public var flags: [Flag] { Flag.allCases.filter(contains) }

    /// Bits 6..15 are reserved and must be zero.
    public static let reservedMask: UInt32 = 0x0000_FFC0

    public var description: String { "0x" + String(rawValue, radix: 16) }

    /// "0x5", "5" or flag names "nodbg,es"; nil when it is none of these.
    public init?(parsing text: String) {
        guard let raw = PolicyNumber.parse(text, flagBits: { Flag(rawValue: $0).map { UInt64($0.bit) } }, base: 0),
            raw <= UInt64(UInt32.max)
        else { return nil }
        rawValue = UInt32(raw)
    }

    init(json: JSONValue, path: String) throws {
        let raw = try PolicyNumber.read(
            json, path: path, maximum: UInt64(UInt32.max), flagBits: { name in Flag(rawValue: name).map { UInt64($0.bit) } },
            flagNames: Flag.allCases.map(\.rawValue), base: 0)
        rawValue = UInt32(raw)
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

/// The SEV-SNP guest policy (64 bits): 7:0 ABI minor, 15:8 ABI major, 16 SMT, 17 reserved (must
/// be 1), 18 MIGRATE_MA, 19 DEBUG, 20 SINGLE_SOCKET, 21 CXL_ALLOW, 22 MEM_AES_256_XTS, 23 RAPL_DIS,
/// 24 CIPHERTEXT_HIDING, 25 PAGE_SWAP_DISABLE; bits 26..63 reserved, zero.
public struct SNPPolicy: Sendable, Equatable, Hashable, Codable, JSONReadable, CustomStringConvertible {
    public var rawValue: UInt64

    public init(rawValue: UInt64) { self.rawValue = rawValue }

    public enum Flag: String, Sendable, CaseIterable {
        case smt
        case migrateMA = "migrate-ma"
        case debug
        case singleSocket = "single-socket"
        case cxlAllow = "cxl-allow"
        case memAES256XTS = "mem-aes-256-xts"
        case raplDisable = "rapl-dis"
        case ciphertextHiding = "ciphertext-hiding"
        case pageSwapDisable = "page-swap-disable"

        public var bit: UInt64 {
            switch self {
            case .smt: return 1 << 16
            case .migrateMA: return 1 << 18
            case .debug: return 1 << 19
            case .singleSocket: return 1 << 20
            case .cxlAllow: return 1 << 21
            case .memAES256XTS: return 1 << 22
            case .raplDisable: return 1 << 23
            case .ciphertextHiding: return 1 << 24
            case .pageSwapDisable: return 1 << 25
            }
        }
    }

    /// Bit 17 is reserved and must be set.
    public static let reservedOne: UInt64 = 1 << 17
    /// Bits 26..63 are reserved and must be zero.
    public static let reservedZeroMask: UInt64 = ~((1 << 26) - 1)
    /// QEMU's default: SMT allowed, nothing else.
    public static let `default` = SNPPolicy(rawValue: 0x30000)

    /// The policy with exactly these flags (plus the reserved bit 17 and the given ABI version).
    public init(flags: [Flag], abiMajor: UInt8 = 0, abiMinor: UInt8 = 0) {
        rawValue = flags.reduce(Self.reservedOne | UInt64(abiMajor) << 8 | UInt64(abiMinor)) { $0 | $1.bit }
    }

    public func contains(_ flag: Flag) -> Bool { rawValue & flag.bit != 0 }
    public var flags: [Flag] { Flag.allCases.filter(contains) }
    public var abiMajor: UInt8 { UInt8(truncatingIfNeeded: rawValue >> 8) }
    public var abiMinor: UInt8 { UInt8(truncatingIfNeeded: rawValue) }

    public mutating func insert(_ flag: Flag) { rawValue |= flag.bit }

    /// Why this policy cannot be used, or nil when it is well formed.
    public var problem: String? {
        if rawValue & Self.reservedOne == 0 { return "bit 17 is reserved and must be 1 (e.g. 0x30000)" }
        if rawValue & Self.reservedZeroMask != 0 { return "bits 26..63 are reserved and must be 0" }
        return nil
    }

    public var description: String { "0x" + String(rawValue, radix: 16) }

    /// "0x30000", "196608" or flag names "smt,debug" (bit 17 added); nil when it is none of these.
    public init?(parsing text: String) {
        guard let raw = PolicyNumber.parse(text, flagBits: { Flag(rawValue: $0)?.bit }, base: Self.reservedOne) else { return nil }
        rawValue = raw
    }

    /// Accepts a number, a hex or decimal string, or a list of flag names (bit 17 added).
    init(json: JSONValue, path: String) throws {
        rawValue = try PolicyNumber.read(
            json, path: path, maximum: UInt64.max, flagBits: { name in Flag(rawValue: name).map(\.bit) },
            flagNames: Flag.allCases.map(\.rawValue), base: Self.reservedOne)
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

/// Parses policy numbers in the spellings users write: 196608, "0x30000", "196608", ["smt", "debug"].
enum PolicyNumber {
    static func parse(_ text: String) -> UInt64? {
        let trimmed = text.trimmingWhitespace().lowercased()
        if trimmed.hasPrefix("0x") { return UInt64(trimmed.dropFirst(2), radix: 16) }
        return UInt64(trimmed)
    }

    /// A number, or comma-separated flag names on top of `base`.
    static func parse(_ text: String, flagBits: (String) -> UInt64?, base: UInt64) -> UInt64? {
        if let number = parse(text) { return number }
        var value = base
        for name in text.split(separator: ",") {
            guard let bit = flagBits(String(name).trimmingWhitespace()) else { return nil }
            value |= bit
        }
        return value
    }

    static func read(
        _ json: JSONValue, path: String, maximum: UInt64, flagBits: (String) -> UInt64?, flagNames: [String], base: UInt64
    ) throws -> UInt64 {
        let allowed = "a number such as 0x30000, or a list of flag names (\(flagNames.joined(separator: ", ")))"
        var value: UInt64
        switch json {
        case .int(let number) where number >= 0:
            value = UInt64(number)
        case .string(let text):
            if let number = parse(text) {
                value = number
            } else {
                // "smt,debug": flag names in one string, as `edit --set snp.policy=smt,debug` writes them.
                value = try combine(text.split(separator: ",").map { String($0).trimmingWhitespace() }, path, base, flagBits, allowed)
            }
        case .array(let items):
            let names = try items.map { item -> String in
                guard case .string(let name) = item else { throw DefinitionError.wrongType(file: nil, field: path, expected: allowed) }
                return name
            }
            value = try combine(names, path, base, flagBits, allowed)
        default:
            throw DefinitionError.wrongType(file: nil, field: path, expected: allowed)
        }
        guard value <= maximum else {
            throw DefinitionError.invalidValue(
                file: nil, field: path, value: String(value), allowed: "at most 0x\(String(maximum, radix: 16))")
        }
        return value
    }

    private static func combine(
        _ names: [String], _ field: String, _ base: UInt64, _ flagBits: (String) -> UInt64?, _ allowed: String
    ) throws -> UInt64 {
        var value = base
        for name in names {
            guard let bit = flagBits(name) else {
                throw DefinitionError.invalidValue(file: nil, field: field, value: name, allowed: allowed)
            }
            value |= bit
        }
        return value
    }
}
