// The launch digest `start` records for encrypted guests, checked against sev-snp-measure itself.
import Definitions
import Foundation
import HostProbe
import Launch
import QMP
import Support
import Testing

@testable import Runtime

@Suite struct ExpectedDigestTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path
    static let oracle: String? = {
        let path = repository + "/.venv-tools/bin/sev-snp-measure"
        if FileManager.default.isExecutableFile(atPath: path) { return path }
        print("SKIP: \(path) is missing (scripts/setup.sh --test-tools installs it); expected-digest oracle test skipped")
        return nil
    }()
    static let ovmf = "/usr/share/ovmf/OVMF.fd"
    static let haveOVMF: Bool = {
        let present = FileManager.default.fileExists(atPath: ovmf)
        if !present { print("SKIP: \(ovmf) is missing (Debian's ovmf package); expected-digest tests skipped") }
        return present
    }()

    static func plan(_ definition: VMDefinition, workspace: Workspace) throws -> LaunchPlan {
        let host = SEVHostFacts(cbitpos: 51, reducedPhysBits: 1, cpuSupportsSEV: true, cpuSupportsSEVES: true, cpuSupportsSNP: true)
        let qemu = QEMUInstallation(
            path: "/usr/bin/qemu-system-x86_64", version: QEMUVersion(major: 10, minor: 0, micro: 2), origin: "system")
        let firmware = FirmwareChoice(
            code: ovmf, vars: nil, singleFile: true, origin: "system", hasSEVMetadata: true, hasHashesTable: false)
        return try LaunchPlanner.plan(
            for: definition, mode: nil, accel: nil, host: host, qemu: qemu, firmware: firmware, workspace: workspace)
    }

    @Test(.enabled(if: oracle != nil && haveOVMF), arguments: [(1, "EPYC-v4"), (4, "EPYC-Milan"), (16, "EPYC-Genoa")])
    func snpDigestMatchesSevSnpMeasure(vcpus: Int, cpu: String) throws {
        let oracle = try #require(Self.oracle)
        let workspace = Workspace(root: NSTemporaryDirectory())
        let definition = VMDefinition(name: "attested", mode: .snp, memoryMiB: 2048, vcpus: vcpus, cpu: cpu)
        let digest = try LaunchMeasurement.expectedDigest(
            for: definition, plan: Self.plan(definition, workspace: workspace), workspace: workspace)
        let expected = try ProcessRunner.run([
            oracle, "--mode", "snp", "--vcpus", "\(vcpus)", "--vcpu-type", cpu, "--ovmf", Self.ovmf, "--output-format", "hex",
        ])
        #expect(expected.succeeded, "sev-snp-measure failed: \(expected.stderrText)")
        #expect(digest == expected.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(digest.count == 96)
    }

    @Test(.enabled(if: haveOVMF)) func statusShowsTheRecordedDigestOrWhyNot() {
        var status = VMStatus(name: "attested", state: .running, guestReport: [], runtimeFolder: "/tmp/run/attested")
        status.mode = .snp
        status.expectedDigest = String(repeating: "ab", count: 48)
        #expect(
            status.render(terminal: Terminal(fd: -1, environment: [:])).contains(
                "expected launch digest: " + String(repeating: "ab", count: 48)))
        status.expectedDigest = nil
        status.expectedDigestNote = "firmware has no SEV metadata"
        #expect(
            status.render(terminal: Terminal(fd: -1, environment: [:])).contains(
                "expected launch digest: unavailable (firmware has no SEV metadata)"))
    }
}
