// SNPLaunchContext: the SHA-384 chain of 112-byte PAGE_INFO records the secure processor extends per launched page.
import Crypto
import Firmware

/// The running SNP launch digest. Each SNP_LAUNCH_UPDATE extends it with
/// SHA-384(PAGE_INFO) where PAGE_INFO = digest so far (48) || page contents digest (48) ||
/// length u16 (0x70) || page type u8 || IMI u8 || VMPL3/2/1 permissions u8 ×3 || reserved u8 || GPA u64
/// (SEV-SNP ABI specification, "PAGE_INFO structure").
struct SNPLaunchContext {
    enum PageType: UInt8 {
        case normal = 0x01
        case vmsa = 0x02
        case zero = 0x03
        case unmeasured = 0x04
        case secrets = 0x05
        case cpuid = 0x06
    }

    static let digestSize = 48
    static let pageSize = 4096
    static let zeroDigest = [UInt8](repeating: 0, count: digestSize)
    /// VMSA pages are recorded at GPA -1, page-aligned and truncated to 52 address bits.
    static let vmsaAddress: UInt64 = 0xFFFF_FFFF_F000

    var digest = SNPLaunchContext.zeroDigest
    /// Reused for every record: only the digest, contents, type and address change.
    private var record = [UInt8](repeating: 0, count: 0x70)

    init() {
        record[0x60] = 0x70
    }

    mutating func add(type: PageType, address: UInt64, contents: [UInt8]) {
        record.replaceSubrange(0..<48, with: digest)
        record.replaceSubrange(48..<96, with: contents)
        record[0x62] = type.rawValue
        for index in 0..<8 { record[0x68 + index] = UInt8(truncatingIfNeeded: address >> (8 * index)) }
        digest = record.withUnsafeBytes { Self.pageDigest($0) }
    }

    /// One record per 4 KiB page of a zero or unmeasured range (their contents digest is all zeros).
    mutating func addEmptyPages(base: UInt64, size: Int, type: PageType) {
        for offset in stride(from: 0, to: size, by: Self.pageSize) {
            add(type: type, address: base + UInt64(offset), contents: Self.zeroDigest)
        }
    }

    /// Every page of the firmware as normal pages, mapped to end at 4 GiB. Pages are hashed in place.
    mutating func addFirmware(_ firmware: OVMFImage) throws {
        guard firmware.size % Self.pageSize == 0 else {
            throw MeasureError.firmwareNotPageAligned(path: firmware.path, size: firmware.size)
        }
        let base = firmware.guestPhysicalBase
        firmware.bytes.withUnsafeBytes { raw in
            for offset in stride(from: 0, to: raw.count, by: Self.pageSize) {
                let page = UnsafeRawBufferPointer(rebasing: raw[offset..<offset + Self.pageSize])
                add(type: .normal, address: base + UInt64(offset), contents: Self.pageDigest(page))
            }
        }
    }

    /// SHA-384 of bytes in place (no copy of the page).
    static func pageDigest(_ page: UnsafeRawBufferPointer) -> [UInt8] {
        var hasher = SHA384()
        hasher.update(bufferPointer: page)
        return Array(hasher.finalize())
    }
}
