// SNPAttestationReport: the 1184-byte report an SNP guest obtains from the secure processor, and its signature check.
import Crypto
import FoundationEssentials

#if canImport(Glibc)
    import Glibc
#endif

/// A TCB version as the secure processor packs it in 8 bytes (Milan and Genoa layout:
/// boot loader, TEE, 4 reserved, SNP firmware, microcode).
public struct TCBVersion: Sendable, Equatable, Codable, CustomStringConvertible {
    public let raw: UInt64

    public init(raw: UInt64) { self.raw = raw }

    public var bootloader: UInt8 { UInt8(truncatingIfNeeded: raw) }
    public var tee: UInt8 { UInt8(truncatingIfNeeded: raw >> 8) }
    public var snp: UInt8 { UInt8(truncatingIfNeeded: raw >> 48) }
    public var microcode: UInt8 { UInt8(truncatingIfNeeded: raw >> 56) }

    public var description: String { "bootloader \(bootloader), tee \(tee), snp \(snp), microcode \(microcode)" }
}

/// A parsed report. Fields are read from `bytes` at the offsets of the SEV-SNP ABI specification's
/// ATTESTATION_REPORT structure; the signature covers bytes 0x000-0x29F.
public struct SNPAttestationReport: Sendable, Equatable {
    public static let size = 0x4A0
    public static let signedSize = 0x2A0
    public let bytes: [UInt8]

    public init(bytes: [UInt8]) throws {
        guard bytes.count == Self.size else { throw MeasureError.reportSize(actual: bytes.count) }
        self.bytes = bytes
    }

    /// Reads a report file: the raw 1184 bytes, or hex text of them (as `xxd -p` or virtee's tools write).
    public init(contentsOf path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw MeasureError.unreadable(path: path, errno: FileManager.default.fileExists(atPath: path) ? EACCES : ENOENT)
        }
        let raw = [UInt8](data)
        if raw.count == Self.size {
            try self.init(bytes: raw)
            return
        }
        guard let text = String(bytes: raw, encoding: .utf8) else {
            throw MeasureError.reportNotHex(path: path, reason: "\(raw.count) bytes that are not text")
        }
        guard let decoded = Measure.bytes(fromHex: text) else {
            throw MeasureError.reportNotHex(path: path, reason: "\(raw.count) bytes of text with non-hex characters")
        }
        try self.init(bytes: decoded)
    }

    public var version: UInt32 { u32(0x00) }
    public var guestSVN: UInt32 { u32(0x04) }
    public var policy: UInt64 { u64(0x08) }
    public var familyID: [UInt8] { slice(0x10, 16) }
    public var imageID: [UInt8] { slice(0x20, 16) }
    public var vmpl: UInt32 { u32(0x30) }
    /// 1 is ECDSA P-384 with SHA-384, the only algorithm defined so far.
    public var signatureAlgorithm: UInt32 { u32(0x34) }
    public var currentTCB: TCBVersion { TCBVersion(raw: u64(0x38)) }
    public var platformInfo: UInt64 { u64(0x40) }
    public var authorKeyEnabled: Bool { u32(0x48) & 0x1 != 0 }
    public var maskChipKey: Bool { u32(0x48) & 0x2 != 0 }
    /// 0: VCEK, 1: VLEK, 7: none.
    public var signingKey: UInt32 { (u32(0x48) >> 2) & 0x7 }
    public var reportData: [UInt8] { slice(0x50, 64) }
    public var measurement: [UInt8] { slice(0x90, 48) }
    public var hostData: [UInt8] { slice(0xC0, 32) }
    public var idKeyDigest: [UInt8] { slice(0xE0, 48) }
    public var authorKeyDigest: [UInt8] { slice(0x110, 48) }
    public var reportID: [UInt8] { slice(0x140, 32) }
    public var reportIDMigrationAgent: [UInt8] { slice(0x160, 32) }
    public var reportedTCB: TCBVersion { TCBVersion(raw: u64(0x180)) }
    /// CPUID family, model and stepping of the chip (report version 3 and later; zero before).
    public var cpuidFamily: UInt8 { bytes[0x188] }
    public var cpuidModel: UInt8 { bytes[0x189] }
    public var cpuidStepping: UInt8 { bytes[0x18A] }
    public var chipID: [UInt8] { slice(0x1A0, 64) }
    public var committedTCB: TCBVersion { TCBVersion(raw: u64(0x1E0)) }
    public var currentVersion: String { "\(bytes[0x1EA]).\(bytes[0x1E9]).\(bytes[0x1E8])" }
    public var committedVersion: String { "\(bytes[0x1EE]).\(bytes[0x1ED]).\(bytes[0x1EC])" }
    public var launchTCB: TCBVersion { TCBVersion(raw: u64(0x1F0)) }
    /// The signature's R and S as 72-byte little-endian fields (only the low 48 bytes are used for P-384).
    public var signatureR: [UInt8] { slice(0x2A0, 72) }
    public var signatureS: [UInt8] { slice(0x2E8, 72) }

    /// Checks the ECDSA P-384 signature with the VCEK's public key; throws naming why it fails.
    public func verifySignature(with certificate: VCEKCertificate) throws {
        guard signatureAlgorithm == 1 else {
            throw MeasureError.signatureInvalid(reason: "signature algorithm \(signatureAlgorithm) is not ECDSA P-384 (1)")
        }
        let r = signatureR
        let s = signatureS
        guard r[48...].allSatisfy({ $0 == 0 }), s[48...].allSatisfy({ $0 == 0 }) else {
            throw MeasureError.signatureInvalid(reason: "R or S is wider than 384 bits")
        }
        // The report stores R and S little-endian; ECDSA's raw form is big-endian R || S.
        let raw = Array(r[0..<48].reversed()) + Array(s[0..<48].reversed())
        let signature: P384.Signing.ECDSASignature
        do {
            signature = try P384.Signing.ECDSASignature(rawRepresentation: raw)
        } catch {
            throw MeasureError.signatureInvalid(reason: "R and S do not form a P-384 signature")
        }
        let key: P384.Signing.PublicKey
        do {
            key = try certificate.signingKey()
        } catch {
            throw MeasureError.certificate(path: certificate.path, reason: "the public key is not a point on P-384")
        }
        guard key.isValidSignature(signature, for: bytes[0..<Self.signedSize]) else {
            throw MeasureError.signatureInvalid(reason: "ECDSA P-384 check over bytes 0x000-0x29F failed with \(certificate.path)")
        }
    }

    private func u32(_ offset: Int) -> UInt32 {
        (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[offset + $1]) << (8 * $1) }
    }

    private func u64(_ offset: Int) -> UInt64 {
        (0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[offset + $1]) << (8 * $1) }
    }

    private func slice(_ offset: Int, _ count: Int) -> [UInt8] { Array(bytes[offset..<offset + count]) }
}
