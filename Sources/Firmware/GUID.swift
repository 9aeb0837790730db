// GUID: a 16-byte EFI GUID as stored in firmware (first three fields little-endian).

/// An EFI GUID. `bytes` is the on-disk (mixed-endian) layout edk2 writes; `description` is the
/// canonical lower-case text form, so both sides of a comparison read the same way in messages.
public struct GUID: Hashable, Sendable, CustomStringConvertible {
    public let bytes: [UInt8]

    /// From the 16 bytes as they appear in a firmware image.
    public init?(storedBytes: some Collection<UInt8>) {
        guard storedBytes.count == 16 else { return nil }
        bytes = Array(storedBytes)
    }

    /// From the canonical text form "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx".
    public init?(_ text: String) {
        let groups = text.split(separator: "-", omittingEmptySubsequences: false)
        guard groups.map(\.count) == [8, 4, 4, 4, 12] else { return nil }
        var fields: [[UInt8]] = []
        for group in groups {
            var octets: [UInt8] = []
            var index = group.startIndex
            while index < group.endIndex {
                let next = group.index(index, offsetBy: 2)
                guard let octet = UInt8(group[index..<next], radix: 16) else { return nil }
                octets.append(octet)
                index = next
            }
            fields.append(octets)
        }
        // The first three fields are integers stored little-endian; the last eight bytes are a byte array.
        bytes = fields[0].reversed() + fields[1].reversed() + fields[2].reversed() + fields[3] + fields[4]
    }

    /// The all-zero GUID (never present in a valid table).
    public static let zero = GUID(raw: [UInt8](repeating: 0, count: 16))

    private init(raw: [UInt8]) { bytes = raw }

    public var description: String {
        let order = [3, 2, 1, 0, -1, 5, 4, -1, 7, 6, -1, 8, 9, -1, 10, 11, 12, 13, 14, 15]
        var text = ""
        for index in order {
            if index < 0 {
                text += "-"
            } else {
                let octet = bytes[index]
                text += String(octet >> 4, radix: 16) + String(octet & 0xF, radix: 16)
            }
        }
        return text
    }
}

/// The GUIDs OVMF and QEMU agree on for SEV launches (edk2 OvmfPkg/ResetVector, QEMU target/i386/sev.c).
public enum OVMFGUID {
    /// Marks the end of the footer table that sits 32 bytes before the end of the image.
    public static let footerTable = known("96b582de-1fb2-45f7-baea-a366c55a082d")
    /// Where OVMF reserved the page for the kernel/initrd/cmdline hashes table (GPA, size).
    public static let sevHashTable = known("7255371f-3a3b-4b04-927b-1da6efa8d454")
    /// The SEV-ES AP reset vector (the EIP the application processors start at).
    public static let sevESResetBlock = known("00f771de-1a7e-4fcb-890e-68c77e2fb44e")
    /// Offset from the end of the image of the "ASEV" SEV metadata.
    public static let sevMetadata = known("dc886566-984a-4798-a75e-5585a7bf67cc")
    /// Where OVMF reserved the launch-secret area (GPA, size).
    public static let sevSecretBlock = known("4c2eb361-7d9b-4cc3-8081-127c90d3d294")
    /// The SVSM information block in a Coconut-SVSM image (its entry point, relative to the image).
    public static let svsmInfo = known("a789a612-0597-4c4b-a49f-cbb1fe9d1ddd")
    /// The filesystem GUID of a firmware volume that holds UEFI variables (the NVRAM store).
    public static let nvDataVolume = known("fff12b8d-7696-4c8b-a985-2747075b4f50")

    private static func known(_ text: String) -> GUID {
        // The literals above are well-formed (tests check each round-trips); .zero never matches.
        GUID(text) ?? .zero
    }
}
