// Helpers shared by the HostProbe tests: temporary folders, fixture paths, synthetic OVMF images.
import Foundation
import Testing

@testable import HostProbe

/// A unique temporary folder removed when the test ends (tests run in parallel).
final class TemporaryFolder {
    let path: String

    init(_ label: String = "hostprobe") throws {
        let template = NSTemporaryDirectory() + "sevvm-\(label)-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: template, withIntermediateDirectories: true)
        path = template
    }

    /// Writes `text` at `relative` (creating folders).
    @discardableResult
    func write(_ relative: String, _ data: Data, executable: Bool = false) throws -> String {
        let full = path + "/" + relative
        try FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try data.write(to: URL(fileURLWithPath: full))
        if executable { chmod(full, 0o755) }
        return full
    }

    @discardableResult
    func write(_ relative: String, _ text: String, executable: Bool = false) throws -> String {
        try write(relative, Data(text.utf8), executable: executable)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

enum Fixtures {
    /// Tests/HostProbeTests/Fixtures in the source tree (found from this file's path, not /work/shared).
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures").path

    static func path(_ relative: String) -> String { directory + "/" + relative }

    static func text(_ relative: String) throws -> String {
        try String(contentsOfFile: path(relative), encoding: .utf8)
    }
}

/// Builds an OVMF-shaped image: a leading firmware volume (the variable store, or code), a reset-vector
/// footer table, and optionally an "ASEV" metadata header and a hashes-table entry, laid out as
/// OvmfPkg lays them down, so the real parser reads it.
enum SyntheticOVMF {
    static let variableStore = "fff12b8d-7696-4c8b-a985-2747075b4f50"
    static let codeVolume = "8c8ce578-8a3d-4f1c-9935-896185c32dd3"
    static let footer = "96b582de-1fb2-45f7-baea-a366c55a082d"
    static let sevMetadata = "dc886566-984a-4798-a75e-5585a7bf67cc"
    static let hashesTable = "7255371f-3a3b-4b04-927b-1da6efa8d454"

    static func guid(_ text: String) -> [UInt8] {
        let hex = Array(text.replacingOccurrences(of: "-", with: ""))
        let bytes = stride(from: 0, to: hex.count, by: 2).compactMap { UInt8(String(hex[$0..<$0 + 2]), radix: 16) }
        return Array(bytes[0..<4].reversed()) + Array(bytes[4..<6].reversed()) + Array(bytes[6..<8].reversed()) + Array(bytes[8...])
    }

    static func le32(_ value: UInt32) -> [UInt8] { withUnsafeBytes(of: value.littleEndian, Array.init) }

    /// `hashesTableAddress` 0 mimics distribution builds, which carry the entry with address 0.
    static func image(size: Int = 0x10000, singleFile: Bool, sevMetadata: Bool, hashesTableAddress: UInt32? = nil) -> Data {
        var bytes = [UInt8](repeating: 0xFF, count: size)
        // Firmware volume header: GUID at 0x10, u64 length at 0x20, "_FVH" at 0x28.
        bytes.replaceSubrange(0x10..<0x20, with: guid(singleFile ? variableStore : codeVolume))
        bytes.replaceSubrange(0x20..<0x28, with: le32(0x1000) + [0, 0, 0, 0])
        bytes.replaceSubrange(0x28..<0x2C, with: Array("_FVH".utf8))
        var entries: [UInt8] = []
        func entry(_ guidText: String, _ data: [UInt8]) {
            let length = UInt16(data.count + 18)
            entries += data + [UInt8(length & 0xFF), UInt8(length >> 8)] + guid(guidText)
        }
        if sevMetadata {
            // "ASEV", size, version 1, one section {base, size, kind 1 = SNP_SEC_MEM}, 4 KiB before the end.
            let header = Array("ASEV".utf8) + le32(28) + le32(1) + le32(1) + le32(0x80_0000) + le32(0x1000) + le32(1)
            bytes.replaceSubrange((size - 0x1000)..<(size - 0x1000 + header.count), with: header)
            entry(Self.sevMetadata, le32(0x1000))
        }
        if let hashesTableAddress { entry(hashesTable, le32(hashesTableAddress) + le32(hashesTableAddress == 0 ? 0 : 0x400)) }
        let tableLength = UInt16(entries.count + 18)
        let table = entries + [UInt8(tableLength & 0xFF), UInt8(tableLength >> 8)] + guid(footer)
        let end = size - 0x20
        bytes.replaceSubrange((end - table.count)..<end, with: table)
        return Data(bytes)
    }
}
