// VCPUType: the CPUID signature (family/model/stepping) each QEMU EPYC model puts in the guest's RDX at reset.
import FoundationEssentials
import Support

#if canImport(Glibc)
    import Glibc
#endif

public enum VCPUType {
    /// CPUID Fn0000_0001_EAX from family, model and stepping (AMD CPUID specification #25481):
    /// families above 0xF are split into a base 0xF plus an extended family.
    public static func signature(family: Int, model: Int, stepping: Int) -> UInt32 {
        let baseFamily = family > 0xF ? 0xF : family
        let extendedFamily = family > 0xF ? (family - 0xF) & 0xFF : 0
        let value = extendedFamily << 20 | ((model >> 4) & 0xF) << 16 | baseFamily << 8 | (model & 0xF) << 4 | (stepping & 0xF)
        return UInt32(truncatingIfNeeded: value)
    }

    /// The names sev-snp-measure accepts (in its order), then further QEMU 10 versions of the same models.
    public static let known: [(name: String, family: Int, model: Int, stepping: Int)] = [
        ("EPYC", 23, 1, 2), ("EPYC-v1", 23, 1, 2), ("EPYC-v2", 23, 1, 2), ("EPYC-IBPB", 23, 1, 2),
        ("EPYC-v3", 23, 1, 2), ("EPYC-v4", 23, 1, 2),
        ("EPYC-Rome", 23, 49, 0), ("EPYC-Rome-v1", 23, 49, 0), ("EPYC-Rome-v2", 23, 49, 0), ("EPYC-Rome-v3", 23, 49, 0),
        ("EPYC-Milan", 25, 1, 1), ("EPYC-Milan-v1", 25, 1, 1), ("EPYC-Milan-v2", 25, 1, 1),
        ("EPYC-Genoa", 25, 17, 0), ("EPYC-Genoa-v1", 25, 17, 0),
        ("EPYC-Turin", 26, 0, 0),
        // QEMU 9/10 added versions; a version changes features, never family/model/stepping.
        ("EPYC-Rome-v4", 23, 49, 0), ("EPYC-Rome-v5", 23, 49, 0), ("EPYC-Milan-v3", 25, 1, 1),
        ("EPYC-Genoa-v2", 25, 17, 0), ("EPYC-Turin-v1", 26, 0, 0),
    ]

    public static var names: [String] { known.map(\.name) }

    /// The signature of a named type; also accepts a QEMU `-cpu` value with options ("EPYC-v4,+x2apic").
    public static func signature(named name: String) throws -> UInt32 {
        let model = name.split(separator: ",", maxSplits: 1).first.map(String.init) ?? name
        guard let entry = known.first(where: { $0.name == model }) else {
            throw MeasureError.unknownVCPUType(name: name, allowed: names)
        }
        return signature(family: entry.family, model: entry.model, stepping: entry.stepping)
    }
}

/// The hypervisor that builds the initial vCPU state: each sets a few registers differently.
public enum VMMType: String, Sendable, Codable, CaseIterable, CustomStringConvertible {
    case qemu
    case ec2
    case gce

    /// Case-insensitive, so sev-snp-measure's spellings ("QEMU", "ec2", "gce") work unchanged.
    public init(parsing text: String) throws {
        guard let value = VMMType(rawValue: text.lowercased()) else { throw MeasureError.unknownVMMType(name: text) }
        self = value
    }

    public var description: String { rawValue }
}

extension VCPUType {
    /// The signature from sev-snp-measure's options, with its precedence: family/model/stepping,
    /// then an explicit signature, then a type name. Nil when none is given.
    public static func signature(type: String?, signature: String?, family: Int?, model: Int?, stepping: Int?) throws -> UInt32? {
        if let family {
            guard let model else { throw MeasureError.incompleteVCPUFamily(missing: "--vcpu-model") }
            guard let stepping else { throw MeasureError.incompleteVCPUFamily(missing: "--vcpu-stepping") }
            return Self.signature(family: family, model: model, stepping: stepping)
        }
        if let signature {
            guard let value = parseInteger(signature), let narrow = UInt32(exactly: value) else {
                throw MeasureError.invalidNumber(option: "--vcpu-sig", value: signature)
            }
            return narrow
        }
        return try type.map { try Self.signature(named: $0) }
    }
}

/// Parses an integer as Python's int(text, 0) does: 0x/0o/0b prefixes, decimal otherwise, '_' allowed.
public func parseInteger(_ text: String) -> UInt64? {
    let trimmed = String(text.trimmingWhitespace.filter { $0 != "_" }).lowercased()
    for (prefix, radix) in [("0x", 16), ("0o", 8), ("0b", 2)] where trimmed.hasPrefix(prefix) {
        return UInt64(trimmed.dropFirst(2), radix: radix)
    }
    return UInt64(trimmed, radix: 10)
}
