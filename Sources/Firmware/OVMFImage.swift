// OVMFImage: an OVMF firmware file with the SEV facts QEMU reads from it (footer table, metadata, reset block).
import FoundationEssentials

#if canImport(Glibc)
    import Glibc
#endif

/// One kind of page range OVMF asks the hypervisor to prepare before launch (edk2 OvmfSevMetadata.asm).
public enum SEVSectionKind: UInt32, Sendable, Codable, CaseIterable, CustomStringConvertible {
    case snpSecureMemory = 1
    case snpSecrets = 2
    case cpuid = 3
    case svsmCallingArea = 4
    case snpKernelHashes = 0x10

    public var description: String {
        switch self {
        case .snpSecureMemory: return "secure memory (pre-validated zero pages)"
        case .snpSecrets: return "secrets page"
        case .cpuid: return "CPUID page"
        case .svsmCallingArea: return "SVSM calling area"
        case .snpKernelHashes: return "kernel hashes page"
        }
    }
}

/// One entry of the "ASEV" SEV metadata: a guest-physical range and what it is for.
public struct SEVMetadataSection: Sendable, Equatable, Codable {
    public var base: UInt32
    public var size: UInt32
    /// The raw kind value; `kind` is nil for values this version of sevvm does not know.
    public var kindValue: UInt32

    public init(base: UInt32, size: UInt32, kindValue: UInt32) {
        self.base = base
        self.size = size
        self.kindValue = kindValue
    }

    public var kind: SEVSectionKind? { SEVSectionKind(rawValue: kindValue) }
}

/// One entry of the footer GUID table: its GUID and the bytes it carries.
public struct FooterTableEntry: Sendable, Equatable {
    public var guid: GUID
    public var data: [UInt8]
}

/// An OVMF image (a few MiB, mapped from its file) parsed once.
public struct OVMFImage: Sendable {
    public let path: String
    /// The whole file: measurement hashes it page by page.
    public let bytes: ImageBytes
    /// Footer table entries in file order (the table is walked backwards, then reversed).
    public let footerEntries: [FooterTableEntry]
    /// The SEV metadata sections, empty when the image has none.
    public let sevMetadata: [SEVMetadataSection]
    /// True when the file starts with a firmware volume holding UEFI variables (an NVRAM store).
    public let hasVarsStore: Bool

    /// The footer table (32 bytes before the end) holds an 18-byte header per entry: u16 size, GUID.
    static let footerTableOffsetFromEnd = 32
    static let entryHeaderSize = 18
    static let firmwareVolumeSignature: [UInt8] = Array("_FVH".utf8)

    public init(path: String) throws {
        try self.init(image: try ImageBytes.load(path: path), path: path)
    }

    /// Parses an image already in memory; `path` only names it in errors.
    public init(bytes: [UInt8], path: String) throws {
        try self.init(image: ImageBytes(bytes), path: path)
    }

    private init(image bytes: ImageBytes, path: String) throws {
        self.path = path
        self.bytes = bytes
        let volumes = try Self.walkFirmwareVolumes(bytes, path: path)
        let entries = try Self.parseFooterTable(bytes, path: path)
        if entries == nil && volumes.isEmpty {
            throw FirmwareError.notOVMF(path: path, reason: "no UEFI firmware volume header and no OVMF footer GUID table")
        }
        footerEntries = entries ?? []
        hasVarsStore = volumes.first == OVMFGUID.nvDataVolume
        sevMetadata = try Self.parseSEVMetadata(bytes, entries: footerEntries, path: path)
    }

    public var size: Int { bytes.count }

    /// OVMF is mapped so that it ends at 4 GiB; its first byte's guest-physical address.
    public var guestPhysicalBase: UInt64 { (1 << 32) - UInt64(bytes.count) }

    public var hasFooterTable: Bool { !footerEntries.isEmpty }
    public var hasSEVMetadata: Bool { !sevMetadata.isEmpty }

    /// The data of the footer entry with `guid`, if present.
    public func footerEntry(_ guid: GUID) -> [UInt8]? {
        footerEntries.first { $0.guid == guid }?.data
    }

    /// Guest-physical address of the page OVMF reserved for the kernel hashes table; nil when absent
    /// or zero (builds without measured direct boot still carry the entry, with address 0).
    public var hashesTableAddress: UInt32? {
        guard let data = footerEntry(OVMFGUID.sevHashTable), let address = data.littleEndianUInt32(at: 0), address != 0 else {
            return nil
        }
        return address
    }

    public var hasHashesTable: Bool { hashesTableAddress != nil }

    /// The SEV-ES reset EIP the application processors start at; nil when the image has no reset block.
    public var sevESResetEIP: UInt32? {
        footerEntry(OVMFGUID.sevESResetBlock)?.littleEndianUInt32(at: 0)
    }

    public func hasSection(_ kind: SEVSectionKind) -> Bool {
        sevMetadata.contains { $0.kind == kind }
    }

    /// Whether this image is meant to be loaded alone (-bios / a single pflash) rather than as a
    /// CODE + VARS pair: it carries its own vars store, or it has the power-of-two size of a whole
    /// flash device (AMD's OvmfPkg/AmdSev build has no vars store but is 4 MiB). SNP needs one file.
    public var isSingleFile: Bool {
        if hasVarsStore { return true }
        let count = bytes.count
        return count >= 1 << 20 && count & (count - 1) == 0
    }

    // MARK: - Parsing

    /// Walks the firmware volumes laid end to end from offset 0; returns each volume's filesystem
    /// GUID. A volume whose length runs past the end of the file means the file was cut short.
    static func walkFirmwareVolumes(_ bytes: ImageBytes, path: String) throws -> [GUID] {
        var offset = 0
        var volumes: [GUID] = []
        while offset + 0x30 <= bytes.count, Array(bytes[offset + 0x28..<offset + 0x2C]) == firmwareVolumeSignature {
            guard let length = bytes.littleEndianUInt64(at: offset + 0x20), length >= 0x48,
                let guid = GUID(storedBytes: bytes[offset + 0x10..<offset + 0x20])
            else {
                throw FirmwareError.notOVMF(path: path, reason: "firmware volume at offset \(offset) has an impossible length")
            }
            let end = offset + Int(clamping: length)
            if end > bytes.count {
                throw FirmwareError.truncated(
                    path: path, size: bytes.count, needed: end, what: "the firmware volume at offset \(offset)")
            }
            volumes.append(guid)
            offset = end
        }
        return volumes
    }

    /// Parses the footer GUID table; nil when the image has none (plain OVMF vars, other files).
    static func parseFooterTable(_ bytes: ImageBytes, path: String) throws -> [FooterTableEntry]? {
        let footerStart = bytes.count - footerTableOffsetFromEnd - entryHeaderSize
        guard footerStart >= 0, let footerSize = bytes.littleEndianUInt16(at: footerStart),
            let footerGUID = GUID(storedBytes: bytes[footerStart + 2..<footerStart + entryHeaderSize]),
            footerGUID == OVMFGUID.footerTable
        else { return nil }
        let tableSize = Int(footerSize) - entryHeaderSize
        guard tableSize >= 0 else {
            throw FirmwareError.malformedFooterTable(path: path, reason: "footer entry size \(footerSize) is below \(entryHeaderSize)")
        }
        let tableStart = footerStart - tableSize
        guard tableStart >= 0 else {
            throw FirmwareError.truncated(
                path: path, size: bytes.count, needed: tableSize + footerTableOffsetFromEnd + entryHeaderSize, what: "the footer table")
        }
        var entries: [FooterTableEntry] = []
        var end = footerStart
        while end - tableStart >= entryHeaderSize {
            let headerStart = end - entryHeaderSize
            guard let entrySize = bytes.littleEndianUInt16(at: headerStart),
                let guid = GUID(storedBytes: bytes[headerStart + 2..<end])
            else { break }
            let size = Int(entrySize)
            guard size >= entryHeaderSize, end - size >= tableStart else {
                throw FirmwareError.malformedFooterTable(
                    path: path, reason: "entry \(guid) claims \(size) bytes with \(end - tableStart) left in the table")
            }
            entries.append(FooterTableEntry(guid: guid, data: Array(bytes[end - size..<headerStart])))
            end -= size
        }
        return entries.reversed()
    }

    /// Parses the "ASEV" metadata the footer table points at (offset counted from the end of the image).
    static func parseSEVMetadata(_ bytes: ImageBytes, entries: [FooterTableEntry], path: String) throws -> [SEVMetadataSection] {
        guard let entry = entries.first(where: { $0.guid == OVMFGUID.sevMetadata }) else { return [] }
        guard let offsetFromEnd = entry.data.littleEndianUInt32(at: 0) else {
            throw FirmwareError.malformedSEVMetadata(path: path, reason: "the metadata footer entry has no offset")
        }
        let start = bytes.count - Int(offsetFromEnd)
        guard start >= 0 else {
            throw FirmwareError.truncated(path: path, size: bytes.count, needed: Int(offsetFromEnd), what: "the SEV metadata")
        }
        let headerSize = 16
        guard start + headerSize <= bytes.count, let declaredSize = bytes.littleEndianUInt32(at: start + 4),
            let version = bytes.littleEndianUInt32(at: start + 8), let count = bytes.littleEndianUInt32(at: start + 12)
        else {
            throw FirmwareError.malformedSEVMetadata(path: path, reason: "the header at offset \(start) runs past the end")
        }
        guard Array(bytes[start..<start + 4]) == Array("ASEV".utf8) else {
            throw FirmwareError.malformedSEVMetadata(path: path, reason: "no \"ASEV\" signature at offset \(start)")
        }
        guard version == 1 else {
            throw FirmwareError.malformedSEVMetadata(path: path, reason: "version \(version), sevvm reads version 1")
        }
        let itemSize = 12
        let itemsEnd = start + headerSize + Int(count) * itemSize
        guard Int(count) * itemSize <= Int(declaredSize) - headerSize, itemsEnd <= bytes.count else {
            throw FirmwareError.malformedSEVMetadata(
                path: path, reason: "\(count) sections do not fit in the declared \(declaredSize) bytes")
        }
        var sections: [SEVMetadataSection] = []
        var offset = start + headerSize
        while offset < itemsEnd {
            guard let base = bytes.littleEndianUInt32(at: offset), let size = bytes.littleEndianUInt32(at: offset + 4),
                let kind = bytes.littleEndianUInt32(at: offset + 8)
            else { break }
            sections.append(SEVMetadataSection(base: base, size: size, kindValue: kind))
            offset += itemSize
        }
        return sections
    }
}
