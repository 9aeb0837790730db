// query-sev-capabilities end to end: a replay server speaking real QMP, and real QEMU on this machine.
import Foundation
import QMP
import Support
import Testing

@testable import HostProbe

#if canImport(Glibc)
    import Glibc
#endif

@Suite struct ReplayedCapabilitiesTests {
    static let captured = "qmp/genoa-snp-host.query-sev-capabilities.txt"
    /// What QEMU 10.0.2 answers on this machine (KVM present, no SEV), captured with socat.
    static var nonSEVError: [String: Any] { ["error": ["class": "GenericError", "desc": "SEV is not enabled in KVM"]] }

    @Test func genoaReplyIsDecoded() async throws {
        let server = try ReplayQMPServer(replies: ["query-sev-capabilities": try ReplayQMPServer.capturedReply(Self.captured)])
        defer { server.stop() }
        let query = await SocketCapabilities(socketPath: server.socketPath).query()
        guard case .answered(let capabilities) = query.answer else {
            Issue.record("expected capabilities, got \(query.answer)")
            return
        }
        #expect(server.commands == ["qmp_capabilities", "query-sev-capabilities"])
        #expect(capabilities.cbitpos == 51)
        #expect(capabilities.reducedPhysBits == 1)
        #expect(capabilities.pdhSize == 0x824)
        #expect(capabilities.certChainSize == 3 * 0x824)
        #expect(capabilities.cpu0ID.count == 128)
        #expect(capabilities.cpu0ID.hasPrefix("0650309"))
        #expect(capabilities.pdh.usage == "PDH")
        #expect(capabilities.pdh.algorithm == "ECDH-SHA256")
        #expect((capabilities.pdh.apiMajor, capabilities.pdh.apiMinor) == (1, 55))
        #expect(capabilities.pdh.signedBy == ["PEK"])
        #expect(capabilities.certChain.map(\.usage) == ["PEK", "OCA", "CEK"])
        #expect(capabilities.certChain[0].signedBy == ["OCA", "CEK"])
    }

    @Test func exportWritesTheDecodedBinaries() async throws {
        let server = try ReplayQMPServer(replies: ["query-sev-capabilities": try ReplayQMPServer.capturedReply(Self.captured)])
        defer { server.stop() }
        let query = await SocketCapabilities(socketPath: server.socketPath).query()
        guard case .answered(let capabilities) = query.answer else {
            Issue.record("expected capabilities, got \(query.answer)")
            return
        }
        let folder = try TemporaryFolder("certs")
        let written = try capabilities.exportCertificates(to: folder.path + "/certs")
        #expect(written.map { ($0 as NSString).lastPathComponent } == ["pdh.cert", "cert_chain.cert"])
        let reply = try #require(try ReplayQMPServer.capturedReply(Self.captured)["return"] as? [String: Any])
        let pdhText = try #require(reply["pdh"] as? String)
        let chainText = try #require(reply["cert-chain"] as? String)
        let pdh = try #require(Data(base64Encoded: pdhText))
        let chain = try #require(Data(base64Encoded: chainText))
        #expect(FileManager.default.contents(atPath: written[0]) == pdh)
        #expect(FileManager.default.contents(atPath: written[1]) == chain)
    }

    @Test func nonSEVHostErrorBecomesAFailWithItsFix() async throws {
        let server = try ReplayQMPServer(replies: ["query-sev-capabilities": Self.nonSEVError])
        defer { server.stop() }
        let folder = try TemporaryFolder("replay-error")
        let host = try FixtureHost(base: "genoa", in: folder)
        var options = try FixtureSoftware.install(in: folder, root: host.root)
        options.capabilities = .socket(server.socketPath)
        let report = await host.prober().probe(options)
        let check = try #require(report.check("qmp.capabilities"))
        #expect(check.status == .fail)
        #expect(check.message.contains("GenericError: SEV is not enabled in KVM"))
        #expect(check.hint?.contains("options kvm_amd sev=1") == true)
        #expect(report.verdicts.allSatisfy { !$0.ready && $0.blocking == ["qmp.capabilities"] })
        #expect(report.capabilities == nil)
    }

    @Test func missingSocketIsExplained() async throws {
        let folder = try TemporaryFolder("no-socket")
        let query = await SocketCapabilities(socketPath: folder.path + "/absent.sock").query()
        guard case .unavailable(let reason) = query.answer else {
            Issue.record("expected unavailable, got \(query.answer)")
            return
        }
        #expect(reason.contains("absent.sock"))
    }
}

/// The real machine: whatever CPU this VM exposes, real QEMU 10 started and killed by caps.
@Suite(.serialized) struct RealHostTests {
    static let qemu = ProcessRunner.which("qemu-system-x86_64")

    /// Children of this test process whose command is QEMU (the probe QEMU must never outlive caps).
    static func qemuChildren() -> [String] {
        let me = getpid()
        return ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { pid -> String? in
            guard Int32(pid) != nil, let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            else { return nil }
            let fields = stat[stat.index(close, offsetBy: 2)...].split(separator: " ")
            guard fields.count > 1, Int32(fields[1]) == me, stat.contains("(qemu-system") else { return nil }
            return pid
        }
    }

    @Test(.enabled(if: qemu != nil, "needs qemu-system-x86_64 on PATH"))
    func endToEndOnThisMachine() async throws {
        let folder = try TemporaryFolder("real")
        let report = await HostProber().probe(ProbeOptions(workspace: Workspace(root: folder.path)))
        #expect(Self.qemuChildren().isEmpty, "the throw-away QEMU must be killed")

        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        if cpuinfo.contains("AuthenticAMD") {
            #expect(report.check("cpu.vendor")?.status == .pass)
            #expect(report.host.cpu.isAMD)
        }
        // No machine that runs these tests has SEV-SNP: the verdict must say so, with reasons.
        let snp = try #require(report.verdict(for: .snp))
        #expect(!snp.ready)
        #expect(!snp.blocking.isEmpty)
        for name in snp.blocking { #expect(report.check(name)?.hint?.isEmpty == false, "\(name) has a fix") }
        if !FileManager.default.fileExists(atPath: "/dev/sev") {
            #expect(report.check("platform.device")?.status == .fail)
        }
        if report.check("kvm.device")?.status == .pass, !FileManager.default.fileExists(atPath: "/sys/module/kvm_amd/parameters") {
            #expect(report.check("kvm.amd")?.status == .fail)
        }
        // QEMU answered over QMP (version from its greeting, objects from qom-list-properties).
        let qemu = try #require(report.qemu)
        if qemu.version >= QEMUVersion(major: 9, minor: 1, micro: 0) {
            #expect(report.check("qemu.snp")?.status == .pass)
            #expect(report.qemuSupport?.snpGuestProperties?.contains("policy") == true)
        }
        if FileManager.default.fileExists(atPath: "/usr/share/ovmf/OVMF.fd") {
            #expect(report.firmware["snp"]?.code == "/usr/share/ovmf/OVMF.fd")
        }
        // query-sev-capabilities was really asked, and refused with one of QEMU's known errors.
        let capabilities = try #require(report.check("qmp.capabilities"))
        #expect(capabilities.status == .fail)
        let known = ["SEV is not enabled in KVM", "KVM not enabled", "Failed to open /dev/sev"]
        #expect(known.contains { capabilities.message.contains($0) }, "\(capabilities.message)")
        let text = report.text(terminal: Terminal(fd: -1))
        #expect(text.contains("SEV-SNP  not ready: blocked by"))
        #expect(!text.contains("\u{1B}["), "no colour when not on a TTY")
    }

    /// When /dev/kvm cannot be opened, caps asks a TCG QEMU and says why its answer is `KVM not enabled`.
    @Test(.enabled(if: qemu != nil, "needs qemu-system-x86_64 on PATH"))
    func fallsBackToTCGWithoutKVM() async throws {
        let folder = try TemporaryFolder("no-kvm")
        let source = ThrowawayQEMUCapabilities(qemuPath: try #require(Self.qemu), kvmPath: folder.path + "/kvm-missing")
        let query = await source.query()
        #expect(query.note?.contains("-accel tcg") == true)
        #expect(query.answer == .refused(errorClass: "GenericError", description: "KVM not enabled"))
        #expect(query.qemuVersion != nil)
        #expect(Self.qemuChildren().isEmpty)
    }
}
