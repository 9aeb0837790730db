// QEMU and firmware discovery: which binary and which OVMF sevvm picks, against real and synthetic installs.
import Foundation
import QMP
import Support
import Testing

@testable import HostProbe

@Suite struct QEMUDiscoveryTests {
    @Test func workspaceBuildWinsOverPath() throws {
        let folder = try TemporaryFolder("qemu-ws")
        let script = "#!/bin/sh\necho 'QEMU emulator version 9.2.93 (v9.2.0-snp)'\n"
        let built = try folder.write("usr/local/bin/qemu-system-x86_64", script, executable: true)
        let found = try QEMUDiscovery.find(workspace: Workspace(root: folder.path), explicitPath: nil)
        #expect(found.path == built)
        #expect(found.origin == "workspace build")
        #expect(found.version == QEMUVersion(major: 9, minor: 2, micro: 93))
    }

    @Test func explicitPathIsCheckedAndWins() throws {
        let folder = try TemporaryFolder("qemu-explicit")
        #expect(throws: HostProbeError.qemuNotFound(searched: [folder.path + "/nope"])) {
            try QEMUDiscovery.find(workspace: Workspace(root: folder.path), explicitPath: folder.path + "/nope")
        }
        let fake = try folder.write("bin/qemu", "#!/bin/sh\necho 'not a qemu'\n", executable: true)
        #expect(throws: HostProbeError.self) { try QEMUDiscovery.find(workspace: Workspace(root: folder.path), explicitPath: fake) }
    }

    @Test func nothingFoundNamesWhereItLooked() throws {
        let folder = try TemporaryFolder("qemu-none")
        let error = #expect(throws: HostProbeError.self) {
            try QEMUDiscovery.find(workspace: Workspace(root: folder.path), explicitPath: nil, searchPath: folder.path)
        }
        #expect(error?.description.contains("sevvm build qemu") == true)
    }

    @Test(arguments: [
        ("10.0.2", QEMUVersion(major: 10, minor: 0, micro: 2)),
        ("QEMU emulator version 9.2.0 (Debian 1:9.2.0)", QEMUVersion(major: 9, minor: 2, micro: 0)),
        ("QEMU emulator version 8.1.50 (v8.1.0-1234-gabc)", QEMUVersion(major: 8, minor: 1, micro: 50)),
    ])
    func versionParsing(text: String, expected: QEMUVersion) {
        #expect(QEMUVersion(parsing: text) == expected)
    }

    @Test func objectHelpParsing() {
        let help = "sev-snp-guest options:\n  author-key-enabled=<bool>\n  policy=<uint64>\n  sev-device=<string>    - SEV device to use\n"
        #expect(QEMUSEVSupport.properties(fromHelp: help) == ["author-key-enabled", "policy", "sev-device"])
        #expect(QEMUSEVSupport.properties(fromHelp: "qemu-system-x86_64: invalid object type: sev-snp-guest\n") == nil)
    }

    /// The installed QEMU 10 (Debian backports) has both SEV objects.
    @Test(.enabled(if: ProcessRunner.which("qemu-system-x86_64") != nil, "needs qemu-system-x86_64 on PATH"))
    func realQEMUHasSEVObjects() async throws {
        let folder = try TemporaryFolder("qemu-real")
        let qemu = try QEMUDiscovery.find(workspace: Workspace(root: folder.path), explicitPath: nil)
        #expect(qemu.origin == "system")
        #expect(qemu.version >= QEMUVersion(major: 9, minor: 1, micro: 0))
        let support = try await QEMUDiscovery.sevSupport(of: qemu)
        #expect(support.snpGuestProperties?.contains("kernel-hashes") == true)
        #expect(support.snpGuestProperties?.contains("policy") == true)
        #expect(support.sevGuestProperties?.contains("sev-device") == true)
    }
}

@Suite struct FirmwareDiscoveryTests {
    @Test(arguments: [
        (true, true, UInt32(0x400), true, true, true),
        (true, true, UInt32(0), true, true, false),
        (false, false, UInt32(0), false, false, false),
        (true, false, UInt32(0), true, false, false),
    ])
    func inspection(singleFile: Bool, metadata: Bool, hashes: UInt32, expectSingle: Bool, expectMetadata: Bool, expectHashes: Bool)
        throws
    {
        let folder = try TemporaryFolder("ovmf")
        let path = try folder.write(
            "OVMF.fd", SyntheticOVMF.image(singleFile: singleFile, sevMetadata: metadata, hashesTableAddress: hashes))
        let traits = try inspectOVMF(path: path)
        #expect(traits.singleFile == expectSingle)
        #expect(traits.hasSEVMetadata == expectMetadata)
        #expect(traits.hasHashesTable == expectHashes)
    }

    /// A host tree like Debian's: split 4M code without SEV metadata, a 2M single file with it.
    private func debianLikeRoot(_ folder: TemporaryFolder) throws {
        try folder.write("root/usr/share/ovmf/OVMF.fd", SyntheticOVMF.image(singleFile: true, sevMetadata: true, hashesTableAddress: 0))
        try folder.write("root/usr/share/OVMF/OVMF_CODE_4M.fd", SyntheticOVMF.image(singleFile: false, sevMetadata: false))
        try folder.write("root/usr/share/OVMF/OVMF_VARS_4M.fd", Data(repeating: 0, count: 0x2000))
    }

    @Test func snpTakesTheSingleFileAndSEVTakesTheSplitPair() throws {
        let folder = try TemporaryFolder("ovmf-debian")
        try debianLikeRoot(folder)
        let workspace = Workspace(root: folder.path + "/ws")
        let root = HostRoot(folder.path + "/root")
        let snp = try FirmwareDiscovery.find(for: .snp, workspace: workspace, explicitPath: nil, root: root)
        #expect(snp.code == folder.path + "/root/usr/share/ovmf/OVMF.fd")
        #expect(snp.singleFile && snp.vars == nil && snp.hasSEVMetadata && !snp.hasHashesTable)
        let sev = try FirmwareDiscovery.find(for: .sev, workspace: workspace, explicitPath: nil, root: root)
        #expect(sev.code.hasSuffix("OVMF_CODE_4M.fd"))
        #expect(sev.vars?.hasSuffix("OVMF_VARS_4M.fd") == true)
        #expect(sev.origin == "system")
    }

    @Test func workspaceBuildComesFirst() throws {
        let folder = try TemporaryFolder("ovmf-ws")
        try debianLikeRoot(folder)
        let image = SyntheticOVMF.image(singleFile: true, sevMetadata: true, hashesTableAddress: 0x80_F000)
        try folder.write("ws/usr/local/share/qemu/OVMF.fd", image)
        let choice = try FirmwareDiscovery.find(
            for: .snp, workspace: Workspace(root: folder.path + "/ws"), explicitPath: nil, root: HostRoot(folder.path + "/root"))
        #expect(choice.origin == "workspace build")
        #expect(choice.hasHashesTable)
    }

    @Test func snpRefusesSplitFirmware() throws {
        let folder = try TemporaryFolder("ovmf-split")
        let code = try folder.write("fw/OVMF_CODE.fd", SyntheticOVMF.image(singleFile: false, sevMetadata: true))
        try folder.write("fw/OVMF_VARS.fd", Data(repeating: 0, count: 0x2000))
        let workspace = Workspace(root: folder.path)
        #expect(throws: HostProbeError.self) { try FirmwareDiscovery.find(for: .snp, workspace: workspace, explicitPath: code) }
        let sev = try FirmwareDiscovery.find(for: .sev, workspace: workspace, explicitPath: code)
        #expect(sev.vars == folder.path + "/fw/OVMF_VARS.fd")
        #expect(sev.origin == "--firmware")
        let error = #expect(throws: HostProbeError.self) {
            try FirmwareDiscovery.find(for: .snp, workspace: workspace, explicitPath: nil, root: HostRoot(folder.path + "/empty"))
        }
        #expect(error?.description.contains("single-file") == true)
    }

    /// Debian's real OVMF.fd carries SEV metadata (what SNP launches here use).
    @Test(.enabled(if: FileManager.default.fileExists(atPath: "/usr/share/ovmf/OVMF.fd"), "needs Debian's ovmf package"))
    func realDebianOVMF() throws {
        let traits = try inspectOVMF(path: "/usr/share/ovmf/OVMF.fd")
        #expect(traits.singleFile)
        #expect(traits.hasSEVMetadata)
    }
}

@Suite struct SEVHostFactsTests {
    @Test func factsFromCPUIDAndKVM() throws {
        let folder = try TemporaryFolder("facts")
        try folder.write("sys/module/kvm_amd/parameters/sev", "Y\n")
        try folder.write("sys/module/kvm_amd/parameters/sev_es", "Y\n")
        try folder.write("sys/module/kvm_amd/parameters/sev_snp", "N\n")
        // Genoa: SME, SEV, ES, SNP, VMPL; C-bit 51, 1 bit reduction, 4 VMPLs.
        let cpuid = TableCPUID(leaves: [
            0x8000_0000: .init(eax: 0x8000_0028, ebx: 0, ecx: 0, edx: 0),
            0x8000_001F: .init(eax: 0x3B, ebx: 0x4073, ecx: 1006, edx: 1),
        ])
        let facts = HostProber.probeSEVHostFacts(root: folder.path, cpuid: cpuid)
        #expect(facts.cbitpos == 51)
        #expect(facts.reducedPhysBits == 1)
        #expect(facts.cpuSupportsSNP && facts.kvmSNP == false)
        #expect(facts.supports(.sevES) && !facts.supports(.snp))
    }

    @Test func noSEVLeafMeansNoCbitpos() {
        let facts = probeSEVHostFacts(root: "/nonexistent-root", cpuid: TableCPUID(leaves: [:]))
        #expect(facts.cbitpos == nil)
        #expect(facts.kvmSEV == nil)
        #expect(!facts.supports(.sev))
    }
}

/// CPUID answers from a table (leaves absent from it are above the CPU's maximum).
struct TableCPUID: CPUIDSource {
    var leaves: [UInt32: CPUIDRegisters]
    func cpuid(leaf: UInt32, subleaf: UInt32) -> CPUIDRegisters? { leaves[leaf] }
}
