// FirmwareTests: OVMF footer table, SEV metadata and error cases on synthetic and Debian-shipped images.
import Foundation
import Testing

@testable import Firmware

/// Builds a synthetic OVMF tail: footer table entries and an optional ASEV block, laid out as edk2 does.
struct SyntheticOVMF {
    var size = 0x10000
    var entries: [(GUID, [UInt8])] = []
    var sections: [(UInt32, UInt32, UInt32)]? = nil
    var signature = Array("ASEV".utf8)

    func bytes() -> [UInt8] {
        var image = [UInt8](repeating: 0xFF, count: size)
        var entryBlobs = entries
        let metadataOffsetFromEnd = 0x800
        if let sections {
            let start = size - metadataOffsetFromEnd
            var header = signature
            header += le32(UInt32(16 + 12 * sections.count)) + le32(1) + le32(UInt32(sections.count))
            for (base, length, kind) in sections { header += le32(base) + le32(length) + le32(kind) }
            image.replaceSubrange(start..<start + header.count, with: header)
            entryBlobs.append((OVMFGUID.sevMetadata, le32(UInt32(metadataOffsetFromEnd))))
        }
        var table: [UInt8] = []
        for (guid, data) in entryBlobs {
            table += data + le16(UInt16(data.count + 18)) + guid.bytes
        }
        table += le16(UInt16(table.count + 18)) + OVMFGUID.footerTable.bytes
        let end = size - 32
        image.replaceSubrange(end - table.count..<end, with: table)
        return image
    }
}

func le16(_ value: UInt16) -> [UInt8] { [UInt8(value & 0xFF), UInt8(value >> 8)] }
func le32(_ value: UInt32) -> [UInt8] { (0..<4).map { UInt8((value >> (8 * $0)) & 0xFF) } }

@Suite struct GUIDTests {
    @Test(arguments: [
        OVMFGUID.footerTable, OVMFGUID.sevHashTable, OVMFGUID.sevESResetBlock, OVMFGUID.sevMetadata,
        OVMFGUID.sevSecretBlock, OVMFGUID.nvDataVolume, OVMFGUID.svsmInfo,
    ])
    func knownGUIDsRoundTrip(guid: GUID) throws {
        #expect(guid != .zero)
        #expect(GUID(guid.description) == guid)
    }

    @Test func storedLayoutSwapsTheFirstThreeFields() throws {
        let guid = try #require(GUID("96b582de-1fb2-45f7-baea-a366c55a082d"))
        #expect(guid.bytes == [0xDE, 0x82, 0xB5, 0x96, 0xB2, 0x1F, 0xF7, 0x45, 0xBA, 0xEA, 0xA3, 0x66, 0xC5, 0x5A, 0x08, 0x2D])
        #expect(guid.description == "96b582de-1fb2-45f7-baea-a366c55a082d")
    }

    @Test(arguments: ["", "96b582de", "96b582de-1fb2-45f7-baea-a366c55a082", "zzb582de-1fb2-45f7-baea-a366c55a082d"])
    func malformedTextIsRejected(text: String) {
        #expect(GUID(text) == nil)
    }
}

@Suite struct SyntheticImageTests {
    @Test func parsesEntriesMetadataAndResetBlock() throws {
        var synthetic = SyntheticOVMF()
        synthetic.entries = [
            (OVMFGUID.sevESResetBlock, le32(0x80B004)),
            (OVMFGUID.sevHashTable, le32(0x810C00) + le32(0x400)),
        ]
        synthetic.sections = [(0x800000, 0x9000, 1), (0x80D000, 0x1000, 2), (0x80E000, 0x1000, 3), (0x810000, 0x1000, 0x10)]
        let image = try OVMFImage(bytes: synthetic.bytes(), path: "synthetic")
        #expect(image.hasFooterTable)
        #expect(image.footerEntries.map(\.guid) == [OVMFGUID.sevESResetBlock, OVMFGUID.sevHashTable, OVMFGUID.sevMetadata])
        #expect(image.sevESResetEIP == 0x80B004)
        #expect(image.hashesTableAddress == 0x810C00)
        #expect(image.hasHashesTable)
        #expect(image.sevMetadata.map(\.kind) == [.snpSecureMemory, .snpSecrets, .cpuid, .snpKernelHashes])
        #expect(image.sevMetadata[0] == SEVMetadataSection(base: 0x800000, size: 0x9000, kindValue: 1))
        #expect(image.hasSection(.snpKernelHashes))
        #expect(!image.hasSection(.svsmCallingArea))
        #expect(image.guestPhysicalBase == 0x1_0000_0000 - 0x10000)
        #expect(!image.hasVarsStore)
    }

    @Test func wholeFlashSizeWithoutVarsStoreIsSingleFile() throws {
        // AMD's OvmfPkg/AmdSev build: 4 MiB, no vars store, loaded alone with -bios.
        let whole = try OVMFImage(bytes: SyntheticOVMF(size: 4 << 20).bytes(), path: "OVMF.fd")
        #expect(whole.isSingleFile)
        #expect(!whole.hasVarsStore)
        let split = try OVMFImage(bytes: SyntheticOVMF(size: 0x37C000).bytes(), path: "OVMF_CODE_4M.fd")
        #expect(!split.isSingleFile)
    }

    @Test func zeroHashesAddressMeansNoHashesTable() throws {
        var synthetic = SyntheticOVMF()
        synthetic.entries = [(OVMFGUID.sevHashTable, le32(0) + le32(0))]
        let image = try OVMFImage(bytes: synthetic.bytes(), path: "synthetic")
        #expect(image.footerEntry(OVMFGUID.sevHashTable) != nil)
        #expect(!image.hasHashesTable)
        #expect(image.sevESResetEIP == nil)
        #expect(!image.hasSEVMetadata)
    }

    @Test func unknownSectionKindsAreKeptRaw() throws {
        var synthetic = SyntheticOVMF()
        synthetic.sections = [(0x800000, 0x1000, 7)]
        let image = try OVMFImage(bytes: synthetic.bytes(), path: "synthetic")
        #expect(image.sevMetadata.first?.kindValue == 7)
        #expect(image.sevMetadata.first?.kind == nil)
    }

    @Test func wrongMetadataSignatureIsRefused() throws {
        var synthetic = SyntheticOVMF()
        synthetic.sections = [(0x800000, 0x1000, 1)]
        synthetic.signature = Array("XSEV".utf8)
        #expect(throws: FirmwareError.self) { try OVMFImage(bytes: synthetic.bytes(), path: "synthetic") }
    }

    @Test func entryLargerThanTableIsRefused() throws {
        var image = SyntheticOVMF(entries: [(OVMFGUID.sevESResetBlock, le32(0x80B004))]).bytes()
        // The entry header sits right before the footer header: make it claim 0x400 bytes.
        let headerStart = image.count - 32 - 18 - 18
        image.replaceSubrange(headerStart..<headerStart + 2, with: le16(0x400))
        let error = try #require(throws: FirmwareError.self) { try OVMFImage(bytes: image, path: "bad") }
        guard case .malformedFooterTable = error else {
            Issue.record("expected malformedFooterTable, got \(error)")
            return
        }
    }

    @Test func textFileIsNotOVMF() throws {
        let bytes = Array(String(repeating: "not firmware\n", count: 500).utf8)
        let error = try #require(throws: FirmwareError.self) { try OVMFImage(bytes: bytes, path: "notes.txt") }
        #expect(error == .notOVMF(path: "notes.txt", reason: "no UEFI firmware volume header and no OVMF footer GUID table"))
        #expect(error.description.contains("not an OVMF firmware image"))
    }

    @Test func tinyFileIsNotOVMF() throws {
        #expect(throws: FirmwareError.self) { try OVMFImage(bytes: [1, 2, 3], path: "tiny") }
        #expect(throws: FirmwareError.self) { try OVMFImage(bytes: [], path: "empty") }
    }

    @Test func missingFileNamesThePath() throws {
        let error = try #require(throws: FirmwareError.self) { try OVMFImage(path: "/nonexistent/OVMF.fd") }
        #expect(error.description.contains("/nonexistent/OVMF.fd"))
    }
}

/// Debian's ovmf package: present on the development machine and in CI (scripts/setup.sh installs it).
enum DebianOVMF {
    static let singleFile = "/usr/share/ovmf/OVMF.fd"
    static let code4M = "/usr/share/OVMF/OVMF_CODE_4M.fd"
    static let code2M = "/usr/share/OVMF/OVMF_CODE.fd"
    static let vars4M = "/usr/share/OVMF/OVMF_VARS_4M.fd"
    static var installed: Bool {
        let present = [singleFile, code4M, code2M, vars4M].allSatisfy { FileManager.default.fileExists(atPath: $0) }
        if !present { print("SKIPPED: Debian OVMF files (package ovmf) are not installed under /usr/share") }
        return present
    }
}

// Skips (loudly, see DebianOVMF.installed) when the ovmf package is missing.
@Suite(.enabled(if: DebianOVMF.installed)) struct DebianImageTests {
    @Test func singleFileOVMFHasVarsStoreAndSNPMetadata() throws {
        let image = try OVMFImage(path: DebianOVMF.singleFile)
        #expect(image.size == 2 << 20)
        #expect(image.hasVarsStore)
        #expect(image.isSingleFile)
        #expect(image.hasFooterTable)
        #expect(image.hasSEVMetadata)
        #expect(image.sevESResetEIP == 0x80B004)
        #expect(!image.hasHashesTable)
        #expect(image.hasSection(.snpSecrets) && image.hasSection(.cpuid))
        #expect(!image.hasSection(.snpKernelHashes))
    }

    @Test func code4MIsSplitAndHasNoSEVMetadata() throws {
        let image = try OVMFImage(path: DebianOVMF.code4M)
        #expect(!image.isSingleFile)
        #expect(!image.hasVarsStore)
        #expect(image.hasFooterTable)
        #expect(!image.hasSEVMetadata)
        #expect(image.sevESResetEIP == 0x808004)
        #expect(!image.hasHashesTable)
    }

    @Test func code2MIsSplitWithMetadata() throws {
        let image = try OVMFImage(path: DebianOVMF.code2M)
        #expect(!image.isSingleFile)
        #expect(image.hasSEVMetadata)
        #expect(image.sevMetadata.count == 5)
    }

    @Test func varsStoreAloneHasNoFooterTable() throws {
        let image = try OVMFImage(path: DebianOVMF.vars4M)
        #expect(image.hasVarsStore)
        #expect(!image.hasFooterTable)
        #expect(image.sevESResetEIP == nil)
    }

    @Test func truncatedCopyIsReported() throws {
        let full = try OVMFImage(path: DebianOVMF.code4M).bytes
        let error = try #require(throws: FirmwareError.self) {
            try OVMFImage(bytes: Array(full.prefix(1 << 20)), path: "cut.fd")
        }
        guard case .truncated(_, let size, let needed, _) = error else {
            Issue.record("expected truncated, got \(error)")
            return
        }
        #expect(size == 1 << 20)
        #expect(needed > size)
    }
}
