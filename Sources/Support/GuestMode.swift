// The guest's memory-encryption mode: the one word every area of sevvm shares.
public enum GuestMode: String, Sendable, Codable, CaseIterable, CustomStringConvertible {
    case none
    case sev
    case sevES = "sev-es"
    case snp

    public var description: String { rawValue }

    /// Human name as AMD writes it.
    public var displayName: String {
        switch self {
        case .none: return "no encryption"
        case .sev: return "SEV"
        case .sevES: return "SEV-ES"
        case .snp: return "SEV-SNP"
        }
    }

    /// True for the modes whose register state is encrypted (no reset, no SMM).
    public var encryptsState: Bool { self == .sevES || self == .snp }

    public var isEncrypted: Bool { self != .none }
}
