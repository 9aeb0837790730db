// Reads the few OVMF traits discovery needs; interim until the Firmware module's OVMFImage lands on main.
import Foundation

/// GUIDs of OVMF's reset-vector footer table (OvmfPkg/ResetVector), in their on-disk byte order.
private enum OVMFGuid {
    static let footerTable = guidBytes("96b582de-1fb2-45f7-baea-a366c55a082d")
    static let sevMetadata = guidBytes("dc886566-984a-4798-a75e-5585a7bf67cc")
    static let hashesTable = guidBytes("7255371f-3a3b-4b04-927b-1da6efa8d454")
    /// EFI_SYSTEM_NV_DATA_FV_GUID: the variable store that makes OVMF.fd a single file.
    static let variableStore = guidBytes("fff12b8d-7696-4c8b-a985-2747075b4f50")

    /// A GUID in EFI's mixed-endian byte order.
    static func guidBytes(_ text: String) -> [UInt8] {
        let hex = text.replacingOccurrences(of: "-", with: "")
        let bytes = stride(from: 0, to: hex.count, by: 2).compactMap { offset -> UInt8? in
            let start = hex.index(hex.startIndex, offsetBy: offset)
            return UInt8(hex[start..<hex.index(start, offsetBy: 2)], radix: 16)
        }
        guard bytes.count == 16 else { return [] }
        return Array(bytes[0..<4].reversed()) + Array(bytes[4..<6].reversed()) + Array(bytes[6..<8].reversed()) + Array(bytes[8...])
    }
}

/// Inspects an OVMF image: a leading variable store means single file; the footer table lists SEV sections.
func inspectOVMF(path: String) throws -> OVMFTraits {
    guard let data = FileManager.default.contents(atPath: path) else {
        throw HostProbeError.unreadable(path: path, operation: "read", errno: errno == 0 ? ENOENT : errno)
    }
    let bytes = [UInt8](data)
    guard bytes.count >= 0x1000 else { throw HostProbeError.malformed(source: path, reason: "\(bytes.count) bytes is too small for OVMF") }
    let singleFile = Array(bytes[0x10..<0x20]) == OVMFGuid.variableStore
    let entries = footerEntries(bytes)
    let hashes = entries[OVMFGuid.hashesTable].map { $0.count >= 8 && $0.littleEndianUInt32(at: 4) != 0 } ?? false
    return OVMFTraits(
        size: bytes.count, singleFile: singleFile, hasSEVMetadata: entries[OVMFGuid.sevMetadata] != nil, hasHashesTable: hashes)
}

/// The footer table ends 32 bytes before the image end; entries are {data, u16 length, GUID} read backwards.
private func footerEntries(_ bytes: [UInt8]) -> [[UInt8]: [UInt8]] {
    let end = bytes.count - 0x20
    guard end >= 18, Array(bytes[(end - 16)..<end]) == OVMFGuid.footerTable else { return [:] }
    let tableLength = Int(bytes.littleEndianUInt16(at: end - 18))
    let start = end - tableLength
    guard start >= 0 else { return [:] }
    var entries: [[UInt8]: [UInt8]] = [:]
    var cursor = end - 18
    while cursor - 18 >= start {
        let guid = Array(bytes[(cursor - 16)..<cursor])
        let length = Int(bytes.littleEndianUInt16(at: cursor - 18))
        guard length >= 18, cursor - length >= start else { break }
        entries[guid] = Array(bytes[(cursor - length)..<(cursor - 18)])
        cursor -= length
    }
    return entries
}
