// Bad input: each refused with an error that names the problem and what to do.
import Firmware
import Foundation
import Support
import Testing

@testable import Measure

@Suite struct BadInputTests {
    func input(_ mode: GuestMode = .snp, firmware: String, vcpus: Int = 1, kernel: String? = nil) -> MeasurementInput {
        MeasurementInput(mode: mode, ovmfPath: firmware, vcpus: vcpus, vcpuSignature: 0x800F12, kernel: kernel)
    }

    @Test func textFileIsNotOVMF() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/notes.txt"
        try Data(String(repeating: "this is not firmware\n", count: 400).utf8).write(to: URL(fileURLWithPath: path))
        let error = try #require(throws: FirmwareError.self) { try LaunchDigest.compute(input(firmware: path)) }
        guard case .notOVMF(let named, _) = error else {
            Issue.record("expected notOVMF, got \(error)")
            return
        }
        #expect(named == path)
        #expect(error.description.contains("OVMF.fd"))
    }

    @Test(.enabled(if: FileManager.default.fileExists(atPath: "/usr/share/OVMF/OVMF_CODE_4M.fd")))
    func truncatedFirmwareIsReported() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/OVMF_CODE_4M.fd"
        let full = try Data(contentsOf: URL(fileURLWithPath: "/usr/share/OVMF/OVMF_CODE_4M.fd"))
        try full.prefix(full.count / 2).write(to: URL(fileURLWithPath: path))
        let error = try #require(throws: FirmwareError.self) { try LaunchDigest.compute(input(firmware: path)) }
        guard case .truncated = error else {
            Issue.record("expected truncated, got \(error)")
            return
        }
        #expect(error.description.contains("truncated"))
    }

    @Test func unknownCPUTypeListsTheKnownOnes() throws {
        let error = try #require(throws: MeasureError.self) { try VCPUType.signature(named: "EPYC-Bogus") }
        #expect(error == .unknownVCPUType(name: "EPYC-Bogus", allowed: VCPUType.names))
        #expect(error.description.contains("EPYC-Milan"))
        #expect(error.description.contains("--vcpu-sig"))
    }

    @Test(arguments: [GuestMode.snp, .sevES, .sev])
    func zeroVCPUsIsRefused(mode: GuestMode) throws {
        let firmware = try Fixtures.path("ovmf_AmdSev_suffix.bin")
        #expect(throws: MeasureError.noVCPUs) { try LaunchDigest.compute(input(mode, firmware: firmware, vcpus: 0)) }
        #expect(MeasureError.noVCPUs.description.contains("--vcpus"))
    }

    @Test func kernelHashesWithoutHashesTableNamesTheFix() throws {
        let firmware = try Fixtures.path("ovmf_OvmfX64_suffix.bin")
        let error = try #require(throws: MeasureError.self) {
            try LaunchDigest.compute(input(.snp, firmware: firmware, kernel: "/dev/null"))
        }
        #expect(error.description.contains("AmdSev"))
    }

    @Test func firmwareWithoutResetBlockCannotStartSEVES() throws {
        // A vars store is a firmware volume without a footer table: no reset block for the APs.
        var vars = [UInt8](repeating: 0xFF, count: 0x10000)
        let header: [UInt8] = [UInt8](repeating: 0, count: 16) + (GUID("fff12b8d-7696-4c8b-a985-2747075b4f50")?.bytes ?? [])
        vars.replaceSubrange(0..<32, with: header)
        vars.replaceSubrange(0x20..<0x2C, with: [0, 0, 1, 0, 0, 0, 0, 0] + Array("_FVH".utf8))
        let image = try OVMFImage(bytes: vars, path: "OVMF_VARS.fd")
        #expect(throws: MeasureError.missingResetBlock(path: "OVMF_VARS.fd")) {
            try LaunchDigest.compute(input(.sevES, firmware: "OVMF_VARS.fd", vcpus: 2), firmware: image)
        }
        #expect(throws: MeasureError.noSEVMetadata(path: "OVMF_VARS.fd")) {
            try LaunchDigest.compute(input(.snp, firmware: "OVMF_VARS.fd", vcpus: 2), firmware: image)
        }
    }

    @Test func snpNeedsSEVMetadata() throws {
        var synthetic = [UInt8](repeating: 0xFF, count: 0x2000)
        // A footer table with only the reset block: SEV-ES can start, SNP has no metadata to launch with.
        let resetBlock: [UInt8] = [0x04, 0xB0, 0x80, 0x00] + [22, 0] + (GUID("00f771de-1a7e-4fcb-890e-68c77e2fb44e")?.bytes ?? [])
        let footer: [UInt8] = [UInt8(resetBlock.count + 18), 0] + (GUID("96b582de-1fb2-45f7-baea-a366c55a082d")?.bytes ?? [])
        let table = resetBlock + footer
        synthetic.replaceSubrange(0x2000 - 32 - table.count..<0x2000 - 32, with: table)
        let image = try OVMFImage(bytes: synthetic, path: "OVMF_CODE.fd")
        #expect(image.sevESResetEIP == 0x80B004)
        let error = try #require(throws: MeasureError.self) {
            try LaunchDigest.compute(input(.snp, firmware: "OVMF_CODE.fd", vcpus: 2), firmware: image)
        }
        #expect(error == .noSEVMetadata(path: "OVMF_CODE.fd"))
        #expect(error.description.contains("edk2-stable202405"))
        #expect(try LaunchDigest.compute(input(.sevES, firmware: "OVMF_CODE.fd", vcpus: 2), firmware: image).count == 32)
    }

    @Test func missingKernelFileIsNamed() throws {
        let firmware = try Fixtures.path("ovmf_AmdSev_suffix.bin")
        let error = try #require(throws: MeasureError.self) {
            try LaunchDigest.compute(input(.snp, firmware: firmware, kernel: "/nonexistent/vmlinuz"))
        }
        #expect(error == .unreadable(path: "/nonexistent/vmlinuz", errno: ENOENT))
    }

    @Test func initrdWithoutKernelIsRefused() throws {
        var request = input(.snp, firmware: try Fixtures.path("ovmf_AmdSev_suffix.bin"))
        request.initrd = "/dev/null"
        #expect(throws: MeasureError.initrdOrAppendWithoutKernel) { try LaunchDigest.compute(request) }
    }

    @Test func ovmfHashIsOnlyForSNP() throws {
        var request = input(.sevES, firmware: try Fixtures.path("ovmf_AmdSev_suffix.bin"))
        request.snpOVMFHash = [UInt8](repeating: 0, count: 48)
        #expect(throws: MeasureError.ovmfHashNeedsSNP(.sevES)) { try LaunchDigest.compute(request) }
    }

    @Test func noneModeHasNoMeasurement() throws {
        #expect(throws: MeasureError.unsupportedMode(.none)) {
            try LaunchDigest.compute(input(.none, firmware: try Fixtures.path("ovmf_AmdSev_suffix.bin")))
        }
    }

    @Test(arguments: ["qemu", "QEMU", "ec2", "gce"])
    func vmmTypesParseLikeSevSnpMeasure(text: String) throws {
        #expect(try VMMType(parsing: text).rawValue == text.lowercased())
    }

    @Test func unknownVMMTypeIsRefused() {
        #expect(throws: MeasureError.unknownVMMType(name: "xen")) { try VMMType(parsing: "xen") }
    }

    @Test(arguments: [("0x21", UInt64?.some(0x21)), ("33", 33), ("0b101", 5), ("0o17", 15), ("1_000", 1000), ("zz", nil), ("", nil)])
    func integersParseLikePythonIntBase0(text: String, value: UInt64?) {
        #expect(parseInteger(text) == value)
    }
}
