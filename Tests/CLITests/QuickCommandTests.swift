// QuickCommand (status and measure without ArgumentParser) says and does exactly what ArgumentParser's path does.
import Foundation
import Support
import Testing

@testable import sevvm

/// Each case runs the real binary twice: as users run it (QuickCommand takes plain argument lists)
/// and with SEVVM_ARGUMENT_PARSER=1 (ArgumentParser parses everything). Output and exit status must
/// be the same, for plain lists and for every kind of list QuickCommand must hand over.
/// "WS" stands for the workspace folder and "OVMF" for an SNP-capable firmware file in it.
@Suite(.serialized) struct QuickCommandTests {
    static let cases: [[String]] = [
        // status: plain, in any order, both option spellings
        ["status", "web"], ["status", "web", "--json"], ["status", "--json", "web"],
        ["status", "web", "--workspace", "WS"], ["status", "web", "--workspace=WS", "--json"],
        // status: what ArgumentParser judges
        ["status", "nosuch"], ["status"], ["status", "web", "extra"], ["status", "web", "--json", "--json"],
        ["status", "web", "--bogus"], ["status", "--help"], ["status", "web", "--workspace"], ["status", "-j", "web"],
        ["status", "web", "--json=yes"], ["status", "web", "--", "--json"], ["status", "web", "--workspace", "--json"],
        // measure: plain
        ["measure", "--mode", "snp", "--vcpus", "4", "--vcpu-type", "EPYC-v4", "--ovmf", "OVMF"],
        ["measure", "--mode=snp", "--vcpus=2", "--vcpu-type=EPYC-Milan", "--ovmf=OVMF", "--output-format", "base64"],
        ["measure", "--mode", "snp", "--vcpus", "4", "--vcpu-sig", "0x800f12", "--ovmf", "OVMF", "--json"],
        [
            "measure", "--mode", "snp", "--vcpus", "1", "--vcpu-family", "25", "--vcpu-model", "1", "--vcpu-stepping", "1", "--ovmf",
            "OVMF", "-v",
        ],
        ["measure", "--mode", "snp", "--vcpus", "2", "--vcpu-type", "EPYC-v4", "--ovmf", "OVMF", "--guest-features", "0x21", "--verbose"],
        ["measure", "--mode", "snp", "--vcpus", "2", "--vcpu-type", "EPYC-v4", "--vmm-type", "ec2", "--ovmf", "OVMF"],
        ["measure", "--mode", "snp:ovmf-hash", "--ovmf", "OVMF"],
        ["measure", "web"], ["measure", "web", "--vcpus", "8", "--json"], ["measure", "web", "--workspace", "WS"],
        // measure: errors the domain reports (same text either way)
        ["measure", "--mode", "snp", "--vcpus", "0", "--vcpu-type", "EPYC-v4", "--ovmf", "OVMF"],
        ["measure", "--mode", "snp", "--vcpus", "2", "--vcpu-type", "Pentium", "--ovmf", "OVMF"],
        ["measure", "--mode", "snp", "--vcpus", "2", "--vcpu-type", "EPYC-v4", "--ovmf", "WS/missing.fd"],
        ["measure", "--mode", "snp", "--vcpu-type", "EPYC-v4", "--ovmf", "OVMF"],
        ["measure", "--mode", "snp", "--vcpus", "2", "--vcpu-type", "EPYC-v4", "--ovmf", "OVMF", "--output-format", "xml"],
        ["measure", "--mode", "tdx", "--ovmf", "OVMF"], ["measure", "nosuch"], ["measure"],
        // measure: what ArgumentParser judges
        ["measure", "--mode", "snp", "--vcpus", "two", "--ovmf", "OVMF"], ["measure", "--vcpus", "-1", "--mode", "snp", "--ovmf", "OVMF"],
        ["measure", "web", "other"], ["measure", "--help"], ["measure", "-vh"], ["measure", "--mode", "snp", "--mode", "sev"],
        ["measure", "--mode", "snp", "--append", "", "--ovmf", "OVMF"], ["measure", "--dump-vmsa"], ["measure", "--ovmf"],
    ]

    @Test(arguments: cases)
    func sameAsArgumentParser(_ template: [String]) throws {
        guard CLIEnvironment.sevvm != nil else { return }
        let workspace = try TestWorkspace()
        let ovmf = try Self.snpFirmware(in: workspace.root)
        try #require(workspace.sevvm("create", "web", "--mode", "snp", "--memory", "256M", "--vcpus", "2", "--firmware", ovmf).succeeded)
        let arguments = template.map { $0 == "OVMF" ? ovmf : $0.replacingOccurrences(of: "WS", with: workspace.root) }

        let quick = try workspace.run(arguments)
        let parsed = try workspace.run(arguments, environment: ["SEVVM_ARGUMENT_PARSER": "1"])
        #expect(quick.status == parsed.status, "exit status of \(template)")
        #expect(quick.stdoutText == parsed.stdoutText, "output of \(template)")
        #expect(quick.stderrText == parsed.stderrText, "errors of \(template)")
    }

    @Test func plainMeasureGivesTheDigest() throws {
        guard CLIEnvironment.sevvm != nil else { return }
        let workspace = try TestWorkspace()
        let ovmf = try Self.snpFirmware(in: workspace.root)
        let result = try workspace.run(["measure", "--mode", "snp", "--vcpus", "4", "--vcpu-type", "EPYC-v4", "--ovmf", ovmf])
        #expect(result.succeeded)
        #expect(result.stdoutText.trimmingWhitespace.count == 96, "a SHA-384 in hex: \(result.stdoutText)")
    }

    /// An SNP-capable 4 MiB firmware: Debian's OVMF_CODE_4M.fd pages with the footer of edk2's AmdSev
    /// build (what Benchmarks/measure.sh measures).
    static func snpFirmware(in folder: String) throws -> String {
        let code = "/usr/share/OVMF/OVMF_CODE_4M.fd"
        let suffix = CLIEnvironment.packageRoot + "/Tests/MeasureTests/Fixtures/ovmf_AmdSev_suffix.bin"
        let codeBytes = try Data(contentsOf: URL(fileURLWithPath: code))
        let suffixBytes = try Data(contentsOf: URL(fileURLWithPath: suffix))
        let path = folder + "/OVMF_4M_amdsev.fd"
        try (codeBytes.prefix(codeBytes.count - suffixBytes.count) + suffixBytes).write(to: URL(fileURLWithPath: path))
        return path
    }
}

/// QuickCommand's own parse against ArgumentParser's parse of the same list.
@Suite struct QuickCommandParseTests {
    static let plainMeasure: [[String]] = [
        ["--mode", "snp", "--vcpus", "4", "--vcpu-type", "EPYC-v4", "--ovmf", "/f.fd"],
        [
            "--mode=snp", "--vcpus=64", "--vcpu-type=EPYC-v4", "--ovmf=/f.fd", "--kernel", "/k", "--initrd", "/i", "--append",
            "console=ttyS0 root=/dev/vda1",
        ],
        ["web", "--vcpus", "8", "--json", "--workspace", "/w"], ["web"], [],
        ["--vcpu-family", "25", "--vcpu-model", "1", "--vcpu-stepping", "1", "-v", "--mode", "sev-es", "--ovmf", "/f"],
        ["--vcpu-sig", "0x800f12", "--vmm-type", "gce", "--guest-features", "0x21", "--snp-ovmf-hash", "ab", "--output-format", "json"],
        ["--append", "é ü 'quoted' x=1", "--mode", "snp"],
    ]
    static let handedOver: [[String]] = [
        ["--vcpus", "two"], ["--vcpus", "-1"], ["a", "b"], ["--help"], ["-h"], ["-vh"], ["--mode", "snp", "--mode", "sev"],
        ["--append", ""], ["--append="], ["--ovmf"], ["--dump-vmsa"], ["--", "web"], ["-"], ["--verbose", "-v"], ["--json=1"],
        ["--version"], ["--generate-completion-script", "bash"], ["--mode", "--json"],
    ]

    @Test(arguments: plainMeasure)
    func measureMatchesArgumentParser(_ arguments: [String]) throws {
        let quick = try #require(QuickCommand.measureRequest(arguments[...]))
        let parsed = try MeasureCommand.parse(arguments)
        #expect(quick == parsed.request)
    }

    @Test(arguments: handedOver)
    func measureHandsOver(_ arguments: [String]) {
        #expect(QuickCommand.measureRequest(arguments[...]) == nil)
    }

    @Test(arguments: [["web"], ["web", "--json"], ["--json", "web", "--workspace", "/w"], ["web", "--workspace=/w"]])
    func statusMatchesArgumentParser(_ arguments: [String]) throws {
        let quick = try #require(QuickCommand.statusRequest(arguments[...]))
        let parsed = try StatusCommand.parse(arguments)
        #expect(quick.name == parsed.vm.name)
        #expect(quick.json == parsed.output.json)
        #expect(quick.workspace == parsed.workspace.workspace)
    }

    @Test(arguments: [[], ["a", "b"], ["web", "--json", "--json"], ["web", "-h"], ["web", "--workspace"], ["web", "--other"]])
    func statusHandsOver(_ arguments: [String]) {
        #expect(QuickCommand.statusRequest(arguments[...]) == nil)
    }
}
