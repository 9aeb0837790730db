// query-sev-capabilities' answer decoded: C-bit facts, chip ID, and AMD SEV certificates (PDH and its chain).
import FoundationEssentials
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// A certificate in AMD's SEV format (SEV API specification, appendix "Certificates"): 0x824 bytes
/// holding a header, the public key and up to two signatures. Only the header is parsed here.
public struct SEVCertificate: Sendable, Codable, Equatable {
    public static let size = 0x824

    public var version: UInt32
    public var apiMajor: UInt8
    public var apiMinor: UInt8
    /// Numeric key usage (0x1001 OCA, 0x1002 PEK, 0x1003 PDH, 0x1004 CEK, 0x0 ARK, 0x13 ASK).
    public var usageCode: UInt32
    public var usage: String
    public var algorithmCode: UInt32
    public var algorithm: String
    /// Usages of the keys that signed this one ("none" slots omitted).
    public var signedBy: [String]

    public init(bytes: [UInt8]) throws {
        guard bytes.count >= Self.size else {
            throw HostProbeError.malformed(source: "SEV certificate", reason: "\(bytes.count) bytes, expected \(Self.size)")
        }
        version = bytes.littleEndianUInt32(at: 0)
        apiMajor = bytes[4]
        apiMinor = bytes[5]
        usageCode = bytes.littleEndianUInt32(at: 8)
        usage = Self.usageName(usageCode)
        algorithmCode = bytes.littleEndianUInt32(at: 0xC)
        algorithm = Self.algorithmName(algorithmCode)
        // Signature slots at 0x414 and 0x61C each start with {u32 usage, u32 algorithm}; 0x1000 marks an empty slot.
        signedBy = [0x414, 0x61C].map { bytes.littleEndianUInt32(at: $0) }.filter { $0 != 0x1000 }.map(Self.usageName)
        guard version == 1 else {
            throw HostProbeError.malformed(source: "SEV certificate", reason: "version \(version), expected 1")
        }
    }

    static func usageName(_ code: UInt32) -> String {
        switch code {
        case 0x0: return "ARK"
        case 0x13: return "ASK"
        case 0x1001: return "OCA"
        case 0x1002: return "PEK"
        case 0x1003: return "PDH"
        case 0x1004: return "CEK"
        default: return "0x" + String(code, radix: 16)
        }
    }

    static func algorithmName(_ code: UInt32) -> String {
        switch code {
        case 0x1: return "RSA-SHA256"
        case 0x2: return "ECDSA-SHA256"
        case 0x3: return "ECDH-SHA256"
        case 0x101: return "RSA-SHA384"
        case 0x102: return "ECDSA-SHA384"
        case 0x103: return "ECDH-SHA384"
        default: return "0x" + String(code, radix: 16)
        }
    }

    /// Splits a concatenation of certificates (the cert-chain blob holds PEK, OCA and CEK).
    static func chain(_ bytes: [UInt8]) throws -> [SEVCertificate] {
        guard !bytes.isEmpty, bytes.count % size == 0 else {
            throw HostProbeError.malformed(source: "SEV certificate chain", reason: "\(bytes.count) bytes is not a multiple of \(size)")
        }
        return try stride(from: 0, to: bytes.count, by: size).map { try SEVCertificate(bytes: Array(bytes[$0..<$0 + size])) }
    }
}

/// query-sev-capabilities' reply: what the platform offers a guest owner.
public struct SEVCapabilities: Sendable, Codable, Equatable {
    public var cbitpos: Int
    public var reducedPhysBits: Int
    /// The chip's unique ID in hex (keys for the VCEK download).
    public var cpu0ID: String
    public var pdhSize: Int
    public var certChainSize: Int
    public var pdh: SEVCertificate
    public var certChain: [SEVCertificate]
    /// The decoded blobs, for --export-certs (not in JSON: they are files there).
    public var pdhBytes: [UInt8]
    public var certChainBytes: [UInt8]

    enum CodingKeys: String, CodingKey {
        case cbitpos, reducedPhysBits, cpu0ID, pdhSize, certChainSize, pdh, certChain
    }

    /// From the reply's base64 fields.
    public init(cbitpos: Int, reducedPhysBits: Int, pdhBase64: String, certChainBase64: String, cpu0IDBase64: String) throws {
        func decode(_ text: String, _ field: String) throws -> [UInt8] {
            guard let data = Data(base64Encoded: text) else {
                throw HostProbeError.malformed(source: "query-sev-capabilities", reason: "\(field) is not base64")
            }
            return [UInt8](data)
        }
        self.cbitpos = cbitpos
        self.reducedPhysBits = reducedPhysBits
        pdhBytes = try decode(pdhBase64, "pdh")
        certChainBytes = try decode(certChainBase64, "cert-chain")
        cpu0ID = try hexString(decode(cpu0IDBase64, "cpu0-id"))
        pdhSize = pdhBytes.count
        certChainSize = certChainBytes.count
        pdh = try SEVCertificate(bytes: pdhBytes)
        certChain = try SEVCertificate.chain(certChainBytes)
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        cbitpos = try container.decode(Int.self, forKey: .cbitpos)
        reducedPhysBits = try container.decode(Int.self, forKey: .reducedPhysBits)
        cpu0ID = try container.decode(String.self, forKey: .cpu0ID)
        pdhSize = try container.decode(Int.self, forKey: .pdhSize)
        certChainSize = try container.decode(Int.self, forKey: .certChainSize)
        pdh = try container.decode(SEVCertificate.self, forKey: .pdh)
        certChain = try container.decode([SEVCertificate].self, forKey: .certChain)
        pdhBytes = []
        certChainBytes = []
    }

    /// Writes pdh.cert and cert_chain.cert (sevctl's names) into `directory`, created 0700 if missing.
    public func exportCertificates(to directory: String) throws -> [String] {
        do {
            try FileManager.default.createDirectory(
                atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw HostProbeError.exportFailed(path: directory, reason: errorText(error))
        }
        var written: [String] = []
        for (name, bytes) in [("pdh.cert", pdhBytes), ("cert_chain.cert", certChainBytes)] {
            let path = directory + "/" + name
            do {
                try AtomicFile.write(Data(bytes), to: path, permissions: 0o644)
            } catch {
                throw HostProbeError.exportFailed(path: path, reason: "\(error)")
            }
            written.append(path)
        }
        return written
    }
}
