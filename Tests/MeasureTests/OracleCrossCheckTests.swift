// Cross-checks against the real sev-snp-measure on Debian's OVMF builds and a real kernel + initrd.
import Firmware
import Foundation
import Support
import Testing

@testable import Measure

struct OracleCase: CustomStringConvertible, Sendable {
    var mode: GuestMode
    var firmware: String
    var vcpus: Int
    var cpu: String
    var vmm = VMMType.qemu
    var features: UInt64 = 0x1
    var withKernel = false
    var withInitrd = true
    var append: String?

    var description: String {
        let boot = withKernel ? " kernel\(withInitrd ? "+initrd" : "") append=\(append.map { "\"\($0)\"" } ?? "none")" : ""
        return "\(mode) \(URL(fileURLWithPath: firmware).lastPathComponent) \(vcpus)x\(cpu) \(vmm) 0x\(String(features, radix: 16))\(boot)"
    }

    var oracleMode: String { mode == .sevES ? "seves" : mode.rawValue }

    func arguments(kernel: (kernel: String, initrd: String)?) -> [String] {
        var argv = ["--mode", oracleMode, "--ovmf", firmware, "--vcpus", "\(vcpus)", "--vcpu-type", cpu]
        argv += ["--vmm-type", vmm == .qemu ? "QEMU" : vmm.rawValue, "--guest-features", "0x" + String(features, radix: 16)]
        if let kernel {
            argv += ["--kernel", kernel.kernel]
            if withInitrd { argv += ["--initrd", kernel.initrd] }
            if let append { argv += ["--append", append] }
        }
        return argv
    }
}

/// Debian's builds: single-file OVMF.fd (with SNP metadata), split OVMF_CODE_4M.fd (none) and OVMF_CODE.fd.
let debianFirmware = ["/usr/share/ovmf/OVMF.fd", "/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_CODE.fd"]
    .filter { FileManager.default.fileExists(atPath: $0) }

let firmwareCases: [OracleCase] = {
    var cases: [OracleCase] = []
    let shapes = [(1, "EPYC-v4"), (2, "EPYC-Rome"), (7, "EPYC-Milan-v2"), (64, "EPYC-Genoa"), (3, "EPYC-Turin")]
    for firmware in debianFirmware {
        for mode in [GuestMode.snp, .sevES, .sev] {
            for (vcpus, cpu) in shapes { cases.append(OracleCase(mode: mode, firmware: firmware, vcpus: vcpus, cpu: cpu)) }
        }
    }
    if let single = debianFirmware.first {
        cases.append(OracleCase(mode: .snp, firmware: single, vcpus: 4, cpu: "EPYC-v4", vmm: .ec2, features: 0x21))
        cases.append(OracleCase(mode: .snp, firmware: single, vcpus: 4, cpu: "EPYC-v4", vmm: .gce))
        cases.append(OracleCase(mode: .sevES, firmware: single, vcpus: 4, cpu: "EPYC-v4", vmm: .ec2))
        cases.append(OracleCase(mode: .snp, firmware: single, vcpus: 16, cpu: "EPYC-Milan", features: 0x21))
    }
    return cases
}()

/// Command lines with spaces, quotes, '=' and non-ASCII text: hashed as UTF-8 plus a NUL.
let commandLines: [String?] = [
    nil, "", "console=ttyS0", "console=ttyS0 root=/dev/vda1 ro quiet  loglevel=7",
    "init=/bin/sh greeting=\"grüß dich\" ☃ 日本語 ça-va", "trailing space ",
]

func kernelCases(firmware: String) -> [OracleCase] {
    var cases: [OracleCase] = []
    for mode in [GuestMode.snp, .sevES, .sev] {
        for (index, append) in commandLines.enumerated() {
            cases.append(
                OracleCase(
                    mode: mode, firmware: firmware, vcpus: 1 + index, cpu: index % 2 == 0 ? "EPYC-v4" : "EPYC-Milan", withKernel: true,
                    append: append))
        }
        cases.append(OracleCase(mode: mode, firmware: firmware, vcpus: 2, cpu: "EPYC-Genoa", withKernel: true, withInitrd: false))
    }
    cases.append(
        OracleCase(mode: .snp, firmware: firmware, vcpus: 4, cpu: "EPYC-v4", vmm: .ec2, features: 0x21, withKernel: true, append: "a b"))
    cases.append(OracleCase(mode: .snp, firmware: firmware, vcpus: 4, cpu: "EPYC-v4", vmm: .gce, withKernel: true, append: "a b"))
    return cases
}

/// Runs the oracle; returns its digest or nil when it refused the input (stderr in `message`).
func oracleDigest(_ arguments: [String]) throws -> (digest: String?, message: String) {
    let executable = try #require(Oracle.executable)
    let result = try ProcessRunner.run([executable] + arguments)
    let output = result.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
    return (result.succeeded ? output : nil, result.stderrText)
}

func sevvmDigest(_ testCase: OracleCase, kernel: (kernel: String, initrd: String)?) throws -> String {
    let input = MeasurementInput(
        mode: testCase.mode, ovmfPath: testCase.firmware, vcpus: testCase.vcpus,
        vcpuSignature: try VCPUType.signature(named: testCase.cpu), vmmType: testCase.vmm, guestFeatures: testCase.features,
        kernel: kernel?.kernel, initrd: testCase.withInitrd ? kernel?.initrd : nil, append: kernel == nil ? nil : testCase.append)
    return hexString(try LaunchDigest.compute(input))
}

// Skips loudly (see Oracle.available) when sev-snp-measure is not installed.
@Suite(.enabled(if: Oracle.available)) struct OracleCrossCheckTests {
    @Test(arguments: firmwareCases)
    func debianFirmwareMatches(testCase: OracleCase) throws {
        if testCase.mode == .snp, try !OVMFImage(path: testCase.firmware).hasSEVMetadata {
            // Deliberate difference: sev-snp-measure prints a digest no SNP launch can have; sevvm refuses.
            #expect(throws: MeasureError.noSEVMetadata(path: testCase.firmware)) { try sevvmDigest(testCase, kernel: nil) }
            return
        }
        let oracle = try oracleDigest(testCase.arguments(kernel: nil))
        let expected = try #require(oracle.digest, "sev-snp-measure refused: \(oracle.message)")
        #expect(try sevvmDigest(testCase, kernel: nil) == expected)
    }

    // Also needs a real kernel (GuestKernel.available prints why it skips).
    @Test(.enabled(if: GuestKernel.available), arguments: kernelCases(firmware: "ovmf_AmdSev_suffix.bin"))
    func realKernelMatches(testCase: OracleCase) throws {
        var resolved = testCase
        resolved.firmware = try Fixtures.path(testCase.firmware)
        let kernel = try #require(GuestKernel.files)
        let oracle = try oracleDigest(resolved.arguments(kernel: kernel))
        let expected = try #require(oracle.digest, "sev-snp-measure refused: \(oracle.message)")
        #expect(try sevvmDigest(resolved, kernel: kernel) == expected)
    }

    /// Debian's builds have no kernel-hashes support: both tools refuse a kernel on them.
    @Test(.enabled(if: GuestKernel.available), arguments: debianFirmware)
    func kernelOnDebianFirmwareIsRefusedByBoth(firmware: String) throws {
        let kernel = try #require(GuestKernel.files)
        for mode in [GuestMode.snp, .sevES, .sev] {
            let testCase = OracleCase(mode: mode, firmware: firmware, vcpus: 2, cpu: "EPYC-v4", withKernel: true, append: "x")
            let oracle = try oracleDigest(testCase.arguments(kernel: kernel))
            #expect(oracle.digest == nil, "sev-snp-measure accepted \(testCase)")
            #expect(throws: MeasureError.self) { try sevvmDigest(testCase, kernel: kernel) }
        }
    }

    /// The VMSA pages themselves, byte for byte, from sev-snp-measure's --dump-vmsa.
    @Test(arguments: [(GuestMode.snp, VMMType.qemu), (.snp, .ec2), (.snp, .gce), (.sevES, .qemu), (.sevES, .ec2)])
    func vmsaPagesMatchDump(mode: GuestMode, vmm: VMMType) throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let firmware = try Fixtures.path("ovmf_AmdSev_suffix.bin")
        let testCase = OracleCase(mode: mode, firmware: firmware, vcpus: 2, cpu: "EPYC-Milan", vmm: vmm, features: 0x21)
        let executable = try #require(Oracle.executable)
        let result = try ProcessRunner.run([executable] + testCase.arguments(kernel: nil) + ["--dump-vmsa"], workingDirectory: directory)
        try #require(result.succeeded, "sev-snp-measure --dump-vmsa failed: \(result.stderrText)")
        let image = try OVMFImage(path: firmware)
        let resetEIP = try #require(image.sevESResetEIP)
        let builder = VMSABuilder(vmm: vmm, vcpuSignature: 0xA00F11, sevFeatures: mode == .snp ? 0x21 : 0)
        let bootstrap = try #require(FileManager.default.contents(atPath: directory + "/vmsa0.bin"))
        let application = try #require(FileManager.default.contents(atPath: directory + "/vmsa1.bin"))
        #expect([UInt8](bootstrap) == builder.page(eip: VMSABuilder.bootstrapEIP))
        #expect([UInt8](application) == builder.page(eip: resetEIP))
    }
}
