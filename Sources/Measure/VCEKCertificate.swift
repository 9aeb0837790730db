// VCEKCertificate: the P-384 public key of a VCEK (DER X.509), read with a minimal DER walker.
import Crypto
import FoundationEssentials

#if canImport(Glibc)
    import Glibc
#endif

/// A VCEK certificate's subject public key. Only the SubjectPublicKeyInfo is read: the chain to
/// AMD's ARK/ASK is the verifier's business (sevvm checks that this key signed the report).
public struct VCEKCertificate: Sendable {
    public let path: String
    /// The uncompressed point 04 || X || Y (97 bytes), checked to lie on P-384.
    public let publicKeyPoint: [UInt8]

    public init(path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw MeasureError.unreadable(path: path, errno: FileManager.default.fileExists(atPath: path) ? EACCES : ENOENT)
        }
        try self.init(der: [UInt8](data), path: path)
    }

    public init(der: [UInt8], path: String) throws {
        self.path = path
        do {
            let point = try Self.subjectPublicKey(der)
            _ = try P384.Signing.PublicKey(x963Representation: point)
            publicKeyPoint = point
        } catch MeasureError.certificate(_, let reason) {
            throw MeasureError.certificate(path: path, reason: reason)
        } catch {
            throw MeasureError.certificate(path: path, reason: "the public key is not a point on P-384")
        }
    }

    /// The key for CryptoKit (kept as bytes so the certificate stays Sendable).
    func signingKey() throws -> P384.Signing.PublicKey {
        try P384.Signing.PublicKey(x963Representation: publicKeyPoint)
    }

    static let ecPublicKeyOID: [UInt8] = [0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01]  // 1.2.840.10045.2.1
    static let secp384r1OID: [UInt8] = [0x2B, 0x81, 0x04, 0x00, 0x22]  // 1.3.132.0.34

    /// Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version?, serial, signature,
    /// issuer, validity, subject, subjectPublicKeyInfo, ... }, ... } (RFC 5280).
    static func subjectPublicKey(_ der: [UInt8]) throws -> [UInt8] {
        func fail(_ reason: String) -> MeasureError { .certificate(path: "", reason: reason) }
        let certificate = try DERElement.read(der, at: 0)
        guard certificate.tag == 0x30 else { throw fail("not a DER certificate (no outer SEQUENCE)") }
        let tbs = try DERElement.read(der, at: certificate.contentStart)
        guard tbs.tag == 0x30 else { throw fail("no tbsCertificate SEQUENCE") }
        var fields = try DERElement.children(der, of: tbs)
        if fields.first?.tag == 0xA0 { fields.removeFirst() }
        guard fields.count >= 6, fields[5].tag == 0x30 else { throw fail("no subjectPublicKeyInfo") }
        let info = try DERElement.children(der, of: fields[5])
        guard info.count == 2, info[0].tag == 0x30, info[1].tag == 0x03 else { throw fail("malformed subjectPublicKeyInfo") }
        let algorithm = try DERElement.children(der, of: info[0])
        guard algorithm.count == 2, algorithm[0].tag == 0x06, algorithm[0].content(der) == ecPublicKeyOID else {
            throw fail("the key is not an elliptic-curve key")
        }
        guard algorithm[1].tag == 0x06, algorithm[1].content(der) == secp384r1OID else {
            throw fail("the key is not on curve P-384 (secp384r1)")
        }
        let bits = info[1].content(der)
        guard bits.first == 0, bits.count == 98 else { throw fail("the public key is not an uncompressed P-384 point") }
        return Array(bits.dropFirst())
    }
}

/// One DER TLV: where its content starts and where the element ends.
struct DERElement {
    let tag: UInt8
    let contentStart: Int
    let end: Int

    func content(_ der: [UInt8]) -> [UInt8] { Array(der[contentStart..<end]) }

    static func read(_ der: [UInt8], at offset: Int) throws -> DERElement {
        let malformed = MeasureError.certificate(path: "", reason: "malformed DER at offset \(offset)")
        guard offset + 2 <= der.count else { throw malformed }
        let tag = der[offset]
        var length = Int(der[offset + 1])
        var start = offset + 2
        if length & 0x80 != 0 {
            let count = length & 0x7F
            guard count >= 1, count <= 4, start + count <= der.count else { throw malformed }
            length = der[start..<start + count].reduce(0) { $0 << 8 | Int($1) }
            start += count
        }
        guard start + length <= der.count else { throw malformed }
        return DERElement(tag: tag, contentStart: start, end: start + length)
    }

    static func children(_ der: [UInt8], of parent: DERElement) throws -> [DERElement] {
        var result: [DERElement] = []
        var offset = parent.contentStart
        while offset < parent.end {
            let child = try read(der, at: offset)
            guard child.end <= parent.end else { throw MeasureError.certificate(path: "", reason: "DER element overruns its parent") }
            result.append(child)
            offset = child.end
        }
        return result
    }
}
