// Byte layouts and log lines: PSP status structs, SEV certificates, kernel messages, the real devices here.
import Foundation
import Testing

@testable import HostProbe

@Suite struct DecodingTests {
    @Test func platformStatusLayout() throws {
        // api 1.55, state working, flags with bit 8 (SEV-ES initialized), build 0x25, 3 guests.
        let status = try SEVPlatformStatus(bytes: [1, 55, 2, 0x00, 0x01, 0, 0, 0x25, 3, 0, 0, 0])
        #expect(status.state == .working)
        #expect(status.sevESInitialized)
        #expect(status.firmwareVersion == "1.55 build 37")
        #expect(status.guestCount == 3)
        #expect(throws: HostProbeError.self) { try SEVPlatformStatus(bytes: [1, 55]) }
    }

    @Test func snpStatusLayoutAndTCB() throws {
        var bytes: [UInt8] = [1, 58, 1, 0b11, 5, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0]
        bytes += [0x03, 0x00, 0, 0, 0, 0, 0x17, 0xD3] + [0x03, 0x00, 0, 0, 0, 0, 0x16, 0xD3]
        let snp = try SNPPlatformStatus(bytes: bytes)
        #expect(snp.rmpInitialized && snp.aliasCheckComplete)
        #expect(snp.buildID == 5 && snp.guestCount == 2)
        #expect(snp.meetsMinimumFirmware)
        #expect(TCBVersion(snp.currentTCB) == TCBVersion(0xD317_0000_0000_0003))
        #expect(TCBVersion(snp.currentTCB).description == "bootloader 3, TEE 0, SNP 23, microcode 211")
        #expect(snp.currentTCB != snp.reportedTCB)
    }

    @Test(arguments: [
        (UInt8(1), UInt8(50), false), (UInt8(1), UInt8(51), true), (UInt8(2), UInt8(0), true), (UInt8(0), UInt8(99), false),
    ])
    func snpFirmwareMinimum(major: UInt8, minor: UInt8, meets: Bool) throws {
        let snp = try SNPPlatformStatus(bytes: [major, minor] + [UInt8](repeating: 0, count: 30))
        #expect(snp.meetsMinimumFirmware == meets)
    }

    @Test func certificateHeaderRejectsWrongSizesAndVersions() throws {
        #expect(throws: HostProbeError.self) { try SEVCertificate(bytes: [UInt8](repeating: 0, count: 100)) }
        var bytes = [UInt8](repeating: 0, count: SEVCertificate.size)
        bytes[0] = 2
        #expect(throws: HostProbeError.self) { try SEVCertificate(bytes: bytes) }
        #expect(throws: HostProbeError.self) { try SEVCertificate.chain([UInt8](repeating: 0, count: SEVCertificate.size + 1)) }
    }

    @Test(arguments: [
        ("[    4.612345] ccp 0000:22:00.1: SEV-SNP API:1.55 build:21", "ccp 0000:22:00.1: SEV-SNP API:1.55 build:21"),
        ("6,1234,5678901,-;kvm_amd: SEV-SNP enabled (ASIDs 1 - 99)", "kvm_amd: SEV-SNP enabled (ASIDs 1 - 99)"),
        ("plain line", "plain line"),
    ])
    func kernelLogPrefixes(line: String, message: String) {
        #expect(KernelLogFacts.message(of: line) == message)
    }

    @Test func kernelLogFacts() {
        let facts = KernelLogFacts(lines: [
            "6,1,1,-;SEV-SNP: RMP table physical range [0x0000000088800000 - 0x00000000a8dfffff]",
            "6,2,2,-;ccp 0000:22:00.1: SEV API:1.55 build:21",
            "6,3,3,-;ccp 0000:22:00.1: SEV-SNP API:1.55 build:21",
            "6,4,4,-;kvm_amd: SEV-ES enabled (ASIDs 1 - 99)",
            "3,5,5,-;AMD-Vi: SNP: IOMMU disabled or configured in passthrough mode, SNP cannot be supported.",
        ])
        #expect(facts.snpAPI == "1.55 build:21")
        #expect(facts.sevAPI == "1.55 build:21")
        #expect(facts.rmpTableFound)
        #expect(facts.asidLines == ["kvm_amd: SEV-ES enabled (ASIDs 1 - 99)"])
        #expect(facts.errors.count == 1)
        #expect(KernelLogFacts.modesBlocked(by: facts.errors[0]) == [.snp])
        #expect(KernelLogFacts.hint(for: facts.errors[0])?.contains("IOMMU") == true)
        #expect(KernelLogFacts.modesBlocked(by: "ccp 0000:a9:00.5: SEV: failed to INIT error 0x13, rc -5") == [.sev, .sevES, .snp])
    }

    @Test(arguments: [
        (0x19, 0x01, "amd_sev_fam19h_model0xh.sbin"), (0x19, 0x11, "amd_sev_fam19h_model1xh.sbin"),
        (0x1A, 0x02, "amd_sev_fam1ah_model0xh.sbin"), (0x17, 0x31, "amd_sev_fam17h_model3xh.sbin"),
    ])
    func firmwareFileNames(family: Int, model: Int, file: String) {
        #expect(Fix.firmwareFile(family: family, model: model) == file)
    }
}

/// The devices of this machine, read for real (results depend only on what exists here).
@Suite struct RealDeviceTests {
    @Test(.enabled(if: access("/dev/kvm", R_OK | W_OK) == 0, "needs a usable /dev/kvm"))
    func kvmAPIVersionIsTwelve() throws {
        #expect(try DeviceKVM().apiVersion() == 12)
    }

    @Test func missingDevicesSayWhy() throws {
        let folder = try TemporaryFolder("devices")
        let root = HostRoot(folder.path)
        let error = #expect(throws: HostProbeError.self) { try DeviceMSR(root: root).read(0xC001_0010) }
        #expect(error == .unreadable(path: folder.path + "/dev/cpu/0/msr", operation: "open", errno: ENOENT))
        #expect(!DeviceSEV(root: root).isPresent)
        #expect(throws: HostProbeError.self) { try DeviceSEV(root: root).platformStatus() }
        #expect(throws: HostProbeError.self) { try DeviceKVM(root: root).apiVersion() }
    }

    @Test func nativeCPUIDReportsAVendor() {
        let identity = CPUIdentity(cpuid: NativeCPUID())
        #expect(["AuthenticAMD", "GenuineIntel", "HygonGenuine"].contains(identity.vendor))
    }
}
