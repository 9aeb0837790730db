// SNPLaunchContext: the SHA-384 chain of 112-byte PAGE_INFO records the secure processor extends per launched page.
import Dispatch
import Firmware
import FoundationEssentials

#if canImport(Glibc)
    import Glibc
#endif

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
        contents.withUnsafeBytes { add(type: type, address: address, contentsDigest: $0) }
    }

    /// Extends the chain with one PAGE_INFO record. Works in place: a 4 MiB firmware is over a
    /// thousand records, so no per-record arrays.
    mutating func add(type: PageType, address: UInt64, contentsDigest: UnsafeRawBufferPointer) {
        let previous = digest
        record.withUnsafeMutableBytes { record in
            previous.withUnsafeBytes { UnsafeMutableRawBufferPointer(rebasing: record[0..<48]).copyMemory(from: $0) }
            UnsafeMutableRawBufferPointer(rebasing: record[48..<96]).copyMemory(from: contentsDigest)
            record[0x62] = type.rawValue
            for index in 0..<8 { record[0x68 + index] = UInt8(truncatingIfNeeded: address >> (8 * index)) }
            digest.withUnsafeMutableBytes { output in
                guard let destination = output.baseAddress else { return }
                // A thousand-odd records for a 4 MiB firmware: the faster SHA-384 matters here too.
                PageHasher.loaded.digest(of: UnsafeRawBufferPointer(record), into: destination)
            }
        }
    }

    /// One record per 4 KiB page of a zero or unmeasured range (their contents digest is all zeros).
    mutating func addEmptyPages(base: UInt64, size: Int, type: PageType) {
        for offset in stride(from: 0, to: size, by: Self.pageSize) {
            add(type: type, address: base + UInt64(offset), contents: Self.zeroDigest)
        }
    }

    /// Every page of the firmware as normal pages, mapped to end at 4 GiB. Page digests are
    /// independent (only the chain is sequential), so they come from `pageDigests`, computed
    /// on all cores, possibly ahead of time.
    mutating func addFirmware(_ firmware: OVMFImage, pageDigests precomputed: [UInt8]? = nil) throws {
        guard firmware.size % Self.pageSize == 0 else {
            throw MeasureError.firmwareNotPageAligned(path: firmware.path, size: firmware.size)
        }
        let digests = precomputed ?? Self.pageDigests(firmware.bytes)
        let base = firmware.guestPhysicalBase
        digests.withUnsafeBytes { digests in
            for page in 0..<firmware.size / Self.pageSize {
                let contents = UnsafeRawBufferPointer(rebasing: digests[page * Self.digestSize..<(page + 1) * Self.digestSize])
                add(type: .normal, address: base + UInt64(page * Self.pageSize), contentsDigest: contents)
            }
        }
    }

    /// The SHA-384 of every 4 KiB page of `bytes`, concatenated, on all cores.
    static func pageDigests(_ bytes: ImageBytes, hasher: PageHasher = .preferred) -> [UInt8] {
        let pages = bytes.count / pageSize
        // Runs of consecutive pages, handed out one at a time: a core that is busy elsewhere at
        // first (hashing the kernel) takes what is left when it comes free.
        let runs = min(pages, 64)
        var digests = [UInt8](repeating: 0, count: pages * digestSize)
        guard runs > 0 else { return digests }
        bytes.withUnsafeBytes { input in
            digests.withUnsafeMutableBytes { output in
                guard let source = input.baseAddress, let destination = output.baseAddress else { return }
                // Each run writes only its own 48-byte slots of `output` and only reads `input`.
                nonisolated(unsafe) let from = source
                nonisolated(unsafe) let into = destination
                DispatchQueue.concurrentPerform(iterations: runs) { run in
                    let first = run * pages / runs
                    let end = (run + 1) * pages / runs
                    hasher.hash(pages: end - first, from: from + first * pageSize, into: into + first * digestSize)
                }
            }
        }
        return digests
    }

    /// SHA-384 of bytes in place (no copy of the page).
    static func pageDigest(_ page: UnsafeRawBufferPointer) -> [UInt8] {
        var digest = zeroDigest
        digest.withUnsafeMutableBytes { output in
            guard let destination = output.baseAddress else { return }
            PageHasher.loaded.digest(of: page, into: destination)
        }
        return digest
    }
}
