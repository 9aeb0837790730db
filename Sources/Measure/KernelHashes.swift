// KernelHashes: the SEV hashes table QEMU writes for measured direct boot (kernel, initrd, command line).
import Crypto
import Firmware
import FoundationEssentials
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// SHA-256 digests of the kernel, initrd and NUL-terminated command line, laid out exactly as QEMU's
/// `SevHashTable` (target/i386/sev.c): header GUID + length, then cmdline, initrd and kernel entries
/// of {GUID, u16 length, 32-byte digest}, zero-padded to a multiple of 16 bytes.
public struct KernelHashes: Sendable, Equatable {
    public var kernel: [UInt8]
    public var initrd: [UInt8]
    public var cmdline: [UInt8]

    static let tableGUID = GUID("9438d606-4f22-4cc9-b479-a793d411fd21") ?? .zero
    static let kernelGUID = GUID("4de79437-abd2-427f-b835-d5b172d2045b") ?? .zero
    static let initrdGUID = GUID("44baf731-3a2f-4bd7-9af1-41e29169781d") ?? .zero
    static let cmdlineGUID = GUID("97d02dd8-bd20-4c94-aa78-e7714d36ab2a") ?? .zero
    static let entrySize = 16 + 2 + 32
    static let tableSize = 16 + 2 + 3 * entrySize
    static let paddedTableSize = (tableSize + 15) & ~15

    /// Hashes the files. No initrd hashes as the empty string; no command line as a lone NUL, as QEMU does.
    public init(kernel: String, initrd: String?, append: String?) throws {
        self.kernel = try Self.sha256(file: kernel)
        self.initrd = try initrd.map { try Self.sha256(file: $0) } ?? Array(SHA256.hash(data: [UInt8]()))
        self.cmdline = Array(SHA256.hash(data: Array((append ?? "").utf8) + [0]))
    }

    /// The padded table (176 bytes) that SEV and SEV-ES launches add to the measurement.
    public var table: [UInt8] {
        var bytes = Self.tableGUID.bytes + UInt16(Self.tableSize).littleEndianBytes
        for (guid, digest) in [(Self.cmdlineGUID, cmdline), (Self.initrdGUID, initrd), (Self.kernelGUID, kernel)] {
            bytes += guid.bytes + UInt16(Self.entrySize).littleEndianBytes + digest
        }
        return bytes + [UInt8](repeating: 0, count: Self.paddedTableSize - Self.tableSize)
    }

    /// The 4 KiB page SNP measures: the table placed at `offset` (the hashes GPA within its page);
    /// nil when the table would cross the end of the page.
    public func page(tableOffset offset: Int) -> [UInt8]? {
        let table = table
        guard offset >= 0, offset + table.count <= 4096 else { return nil }
        var page = [UInt8](repeating: 0, count: 4096)
        page.replaceSubrange(offset..<offset + table.count, with: table)
        return page
    }

    /// SHA-256 of a file, read in 256 KiB pieces into one buffer. Not mapped like firmware: while
    /// the kernel is hashed, the other core maps the firmware and loads libcrypto, and populating a
    /// second large mapping in the same process made both wait on the address-space lock.
    static func sha256(file path: String) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw MeasureError.unreadable(path: path, errno: errno) }
        defer { close(fd) }
        var hasher = SHA256()
        let failure = DescriptorIO.readToEnd(fd, chunkSize: 1 << 18) { hasher.update(bufferPointer: $0) }
        guard failure == 0 else { throw MeasureError.unreadable(path: path, errno: failure) }
        return Array(hasher.finalize())
    }
}

extension FixedWidthInteger {
    /// The value's bytes, least significant first.
    var littleEndianBytes: [UInt8] { (0..<(Self.bitWidth / 8)).map { UInt8(truncatingIfNeeded: self >> (8 * $0)) } }
}
