// caps' check tree on fixture hosts: Milan, Genoa and Turin with SNP on, and every broken variant.
import Foundation
import Support
import Testing

@testable import HostProbe

/// The software half of a fixture host: a QEMU double replaying QEMU 10.0.2's captured answers,
/// synthetic OVMF files under the root, and query-sev-capabilities answered from the Genoa capture.
enum FixtureSoftware {
    static func install(in folder: TemporaryFolder, root: String) throws -> ProbeOptions {
        // A QEMU double: prints the captured outputs of the real binary for the three questions caps asks.
        let script = """
            #!/bin/sh
            case "$*" in
              --version) cat '\(Fixtures.path("qemu/version-10.0.2.txt"))' ;;
              "-object sev-snp-guest,help") cat '\(Fixtures.path("qemu/sev-snp-guest-help-10.0.2.txt"))' ;;
              "-object sev-guest,help") cat '\(Fixtures.path("qemu/sev-guest-help-10.0.2.txt"))' ;;
              *) echo "unexpected arguments: $*" >&2; exit 1 ;;
            esac

            """
        let qemu = try folder.write("bin/qemu-system-x86_64", script, executable: true)
        let relativeRoot = String(root.dropFirst(folder.path.count + 1))
        try folder.write(
            relativeRoot + "/usr/share/ovmf/OVMF.fd", SyntheticOVMF.image(singleFile: true, sevMetadata: true, hashesTableAddress: 0))
        try folder.write(relativeRoot + "/usr/share/OVMF/OVMF_CODE_4M.fd", SyntheticOVMF.image(singleFile: false, sevMetadata: false))
        try folder.write(relativeRoot + "/usr/share/OVMF/OVMF_VARS_4M.fd", Data(repeating: 0, count: 0x2000))
        return ProbeOptions(
            workspace: Workspace(root: folder.path + "/workspace"), qemuPath: qemu, capabilities: .source(try CapturedCapabilities()),
            searchPath: folder.path + "/bin", memlockLimit: nil, isRoot: true)
    }
}

/// query-sev-capabilities answered with the reply captured on a Genoa host (parsed here without QMP).
struct CapturedCapabilities: SEVCapabilitiesSource {
    var capabilities: SEVCapabilities
    var origin: String { "captured Genoa reply" }

    init() throws {
        let text = try Fixtures.text("qmp/genoa-snp-host.query-sev-capabilities.txt")
        let replyText = try #require(text.components(separatedBy: "\n\n").dropFirst().first)
        let reply = try #require(JSONSerialization.jsonObject(with: Data(replyText.utf8)) as? [String: Any])
        let value = try #require(reply["return"] as? [String: Any])
        capabilities = try SEVCapabilities(
            cbitpos: try #require(value["cbitpos"] as? Int), reducedPhysBits: try #require(value["reduced-phys-bits"] as? Int),
            pdhBase64: try #require(value["pdh"] as? String), certChainBase64: try #require(value["cert-chain"] as? String),
            cpu0IDBase64: try #require(value["cpu0-id"] as? String))
    }

    func query() async -> CapabilityQuery { CapabilityQuery(answer: .answered(capabilities), origin: origin) }
}

@Suite struct HostProberTests {
    @Test(arguments: [("milan", "Milan"), ("genoa", "Genoa"), ("turin", "Turin")])
    func snpReadyHosts(base: String, generation: String) async throws {
        let folder = try TemporaryFolder("host-\(base)")
        let host = try FixtureHost(base: base, in: folder)
        let options = try FixtureSoftware.install(in: folder, root: host.root)
        let report = await host.prober().probe(options)
        // libvirt is optional and absent from the fixture PATH: its SKIP is the only one allowed.
        let failures = report.checks.filter { $0.status == .fail || ($0.status == .skip && $0.name != "libvirt.version") }
        #expect(failures.isEmpty, "\(failures.map { "\($0.name): \($0.message)" })")
        #expect(report.check("libvirt.version")?.status == .skip)
        #expect(report.host.cpu.generation == generation)
        #expect(report.facts.cbitpos == 51)
        #expect(report.facts.reducedPhysBits == 1)
        #expect(report.verdicts.allSatisfy { $0.ready && $0.blocking.isEmpty })
        #expect(report.bestReadyMode == .snp)
        #expect(report.firmware["snp"]?.singleFile == true)
        #expect(report.capabilities?.certChain.map(\.usage) == ["PEK", "OCA", "CEK"])
        #expect(report.host.chipID?.count == 128)
        // SNP-ready hosts still warn about the missing hashes table in a distribution OVMF.
        #expect(report.check("firmware.hashes")?.status == .warn)
    }

    @Test func everyVariantIsLoaded() {
        #expect(HostVariant.loaded.count == 8)
    }

    @Test(arguments: HostVariant.loaded)
    func brokenHosts(variant: HostVariant) async throws {
        let folder = try TemporaryFolder("variant-\(variant.name)")
        let host = try FixtureHost(variant: variant, in: folder)
        let options = try FixtureSoftware.install(in: folder, root: host.root)
        let report = await host.prober().probe(options)
        let failed = report.checks.filter { $0.status == .fail }.map(\.name)
        #expect(failed.sorted() == variant.failed.sorted())
        for name in variant.warned { #expect(report.check(name)?.status == .warn, "\(name)") }
        for name in variant.skipped { #expect(report.check(name)?.status == .skip, "\(name)") }
        for (name, text) in variant.hintContains {
            let hint = report.check(name)?.hint ?? ""
            #expect(hint.contains(text), "\(name) hint: \(hint)")
        }
        let ready = report.verdicts.filter(\.ready).map(\.mode.rawValue)
        #expect(ready == variant.ready)
        // The exit status follows: any ready mode without --mode, exactly the asked one with it.
        #expect(report.isReady(for: nil) == !variant.ready.isEmpty)
        #expect(report.isReady(for: .snp) == variant.ready.contains("snp"))
        for verdict in report.verdicts where !verdict.ready {
            #expect(!verdict.blocking.isEmpty)
            #expect(verdict.blocking.allSatisfy { failed.contains($0) })
        }
        // Every FAIL says what to do.
        #expect(report.checks.filter { $0.status == .fail }.allSatisfy { ($0.hint ?? "").isEmpty == false })
    }

    @Test func childOfFailedCheckIsSkipped() {
        var tree = CheckTree()
        tree.add("a", .cpu, gates: [.sev]) { .fail("broken", hint: "fix it") }
        tree.add("b", .cpu, parent: "a", gates: [.snp]) {
            Issue.record("a child of a failed check must not run"); return .pass("ran")
        }
        tree.add("c", .cpu, parent: "b", gates: [.sevES]) { .pass("ran") }
        #expect(tree.checks.map(\.status) == [.fail, .skip, .skip])
        let verdicts = HostReport.verdicts(for: tree.checks)
        // b and c were skipped under a failed ancestor: their modes are blocked by that ancestor.
        #expect(verdicts.map(\.blocking) == [["a"], ["a"], ["a"]])
    }

    @Test func reportRoundTripsThroughJSON() async throws {
        let folder = try TemporaryFolder("json")
        let host = try FixtureHost(base: "genoa", in: folder)
        let report = await host.prober().probe(try FixtureSoftware.install(in: folder, root: host.root))
        let data = try JSONEncoder().encode(report)
        let decoded = try JSONDecoder().decode(HostReport.self, from: data)
        #expect(decoded.checks == report.checks)
        #expect(decoded.verdicts == report.verdicts)
        #expect(decoded.capabilities?.pdh == report.capabilities?.pdh)
    }
}

@Suite struct HostReportTextTests {
    @Test func textShowsTreeFixesAndVerdictsWithoutColourOffATTY() async throws {
        let folder = try TemporaryFolder("text")
        let variant = try #require(HostVariant.loaded.first { $0.name == "kvm-amd-without-sev-snp" })
        let host = try FixtureHost(variant: variant, in: folder)
        let report = await host.prober().probe(try FixtureSoftware.install(in: folder, root: host.root))
        let text = report.text(terminal: Terminal(fd: -1))
        #expect(text.hasPrefix("Host: AMD EPYC 9654 96-Core Processor, Linux 6.12.9-snp-host\n"))
        #expect(text.contains("\n          [FAIL] kvm.snp: kvm_amd sev_snp=N\n"))
        #expect(text.contains("fix: add `options kvm_amd sev=1 sev-es=1 sev-snp=1` to /etc/modprobe.d/kvm.conf"))
        #expect(text.contains("  SEV-SNP  not ready: blocked by kvm.snp\n"))
        #expect(text.contains("  SEV      ready\n"))
        #expect(text.contains("PDH 2084 bytes (PDH, API 1.55, ECDH-SHA256, signed by PEK)"))
        #expect(!text.contains("\u{1B}["))
    }
}
