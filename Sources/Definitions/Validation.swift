// Semantic checks of a definition: ranges, policy bits, lengths, names, and the files it names.
import FoundationEssentials
import Support

#if canImport(Glibc)
    import Glibc
#endif

extension VMDefinition {
    /// Checks everything that does not touch the file system. Errors carry no file name; the
    /// store adds it.
    public func validate() throws {
        guard schemaVersion >= 1, schemaVersion <= Self.currentSchemaVersion else {
            throw DefinitionError.invalidValue(
                file: nil, field: "schemaVersion", value: String(schemaVersion), allowed: "1...\(Self.currentSchemaVersion)")
        }
        guard VMName.isValid(name) else {
            throw DefinitionError.invalidValue(file: nil, field: "name", value: name, allowed: "1 to 64 characters from A-Z a-z 0-9 . _ -")
        }
        try check(Self.memoryRangeMiB.contains(memoryMiB), "memory", String(memoryMiB), "\(Self.memoryRangeMiB.lowerBound) MiB to 4 TiB")
        try check(Self.vcpuRange.contains(vcpus), "vcpus", String(vcpus), "\(Self.vcpuRange.lowerBound)...\(Self.vcpuRange.upperBound)")
        try check(Self.isOptionWord(cpu), "cpu", cpu, "a QEMU CPU model such as EPYC-v4 (no commas or spaces)")
        try check(Self.isOptionWord(machine), "machine", machine, "a QEMU machine type such as q35")
        for (index, disk) in disks.enumerated() {
            try check(!disk.path.isEmpty && !disk.path.contains(","), "disks.\(index).path", disk.path, "a file path without commas")
            if let format = disk.format {
                try check(Self.isOptionWord(format), "disks.\(index).format", format, "an image format such as qcow2 or raw")
            }
        }
        if let cdrom { try check(!cdrom.isEmpty && !cdrom.contains(","), "cdrom", cdrom, "an ISO file path without commas") }
        if let directBoot {
            try check(!directBoot.kernel.isEmpty, "directBoot.kernel", directBoot.kernel, "a kernel image path")
        }
        if network.mode == .none, !network.forwards.isEmpty {
            throw DefinitionError.invalidValue(
                file: nil, field: "network.forwards", value: network.forwards.map(\.description).joined(separator: ","),
                allowed: "port forwards only with network mode 'user' (set network.mode=user)")
        }
        if let problem = snp.policy.problem {
            throw DefinitionError.invalidValue(file: nil, field: "snp.policy", value: snp.policy.description, allowed: problem)
        }
        if let policy = sev.policy, policy.rawValue & SEVPolicy.reservedMask != 0 {
            throw DefinitionError.invalidValue(file: nil, field: "sev.policy", value: policy.description, allowed: "bits 6..15 must be 0")
        }
        try checkBase64(snp.hostData, "snp.hostData", length: SNPSettings.hostDataLength)
        try checkBase64(snp.guestVisibleWorkarounds, "snp.guestVisibleWorkarounds", length: SNPSettings.guestVisibleWorkaroundsLength)
        if let cbitpos { try check((1...63).contains(cbitpos), "cbitpos", String(cbitpos), "1...63 (CPUID 0x8000001F EBX[5:0], e.g. 51)") }
        if let reducedPhysBits {
            try check((1...63).contains(reducedPhysBits), "reducedPhysBits", String(reducedPhysBits), "1...63 (usually 1)")
        }
        for (index, address) in pciPassthrough.enumerated() {
            try check(Self.isPCIAddress(address), "pciPassthrough.\(index)", address, "a host PCI address DDDD:BB:DD.F, e.g. 0000:01:00.0")
        }
    }

    /// Paths this definition needs to exist, by field name (relative paths are resolved against the workspace).
    public func referencedFiles(in workspace: Workspace) -> [(field: String, path: String)] {
        var files: [(String, String)] = []
        for (index, disk) in disks.enumerated() { files.append(("disks.\(index).path", disk.path)) }
        if let cdrom { files.append(("cdrom", cdrom)) }
        if let directBoot {
            files.append(("directBoot.kernel", directBoot.kernel))
            if let initrd = directBoot.initrd { files.append(("directBoot.initrd", initrd)) }
        }
        if let path = firmware.explicitPath { files.append(("firmware", path)) }
        if let idBlock = snp.idBlock { files.append(("snp.idBlock", idBlock)) }
        if let idAuth = snp.idAuth { files.append(("snp.idAuth", idAuth)) }
        return files.map { (field: $0.0, path: workspace.resolve($0.1)) }
    }

    /// Checks that every file the definition names can be read.
    public func validateFiles(in workspace: Workspace) throws {
        for (field, path) in referencedFiles(in: workspace) where access(path, R_OK) != 0 {
            throw DefinitionError.missingFile(file: nil, field: field, path: path)
        }
    }

    private func check(_ condition: Bool, _ field: String, _ value: String, _ allowed: String) throws {
        if !condition { throw DefinitionError.invalidValue(file: nil, field: field, value: value, allowed: allowed) }
    }

    private func checkBase64(_ value: String?, _ field: String, length: Int) throws {
        guard let value else { return }
        let decoded = Data(base64Encoded: value)
        guard decoded?.count == length else {
            let got = decoded.map { "decodes to \($0.count) bytes" } ?? "is not base64"
            throw DefinitionError.invalidValue(
                file: nil, field: field, value: value, allowed: "base64 of exactly \(length) bytes (this \(got))")
        }
    }

    /// A word that can sit inside a QEMU option without quoting (no commas, spaces or '=').
    static func isOptionWord(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: ",") && $0 != UInt8(ascii: "=") }
    }

    /// DDDD:BB:DD.F in hex, with the device in 0..1f and the function in 0..7.
    static func isPCIAddress(_ text: String) -> Bool {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].count == 4, parts[1].count == 2, UInt16(parts[0], radix: 16) != nil,
            UInt8(parts[1], radix: 16) != nil
        else { return false }
        let slot = parts[2].split(separator: ".", omittingEmptySubsequences: false)
        guard slot.count == 2, slot[0].count == 2, slot[1].count == 1, let device = UInt8(slot[0], radix: 16),
            let function = UInt8(slot[1], radix: 16)
        else { return false }
        return device <= 0x1f && function <= 7
    }
}

extension Workspace {
    /// An absolute path for `path` as written in a definition (relative paths mean "in the workspace").
    public func resolve(_ path: String) -> String {
        path.hasPrefix("/") ? path : root + "/" + path
    }
}
