// Planning with this host's real discovery: the system QEMU and OVMF, and CPUID's SEV facts.
import Definitions
import Foundation
import HostProbe
import Launch
import Support
import Testing

private let hasQEMU = ProcessRunner.which("qemu-system-x86_64") != nil
private let hostLacksSEV = probeSEVHostFacts().cbitpos == nil

@Suite struct DiscoveryPlanTests {
    @Test(.enabled(if: hasQEMU, "qemu-system-x86_64 is not installed"))
    func unencryptedGuestPlansWithTheSystemQEMUAndSeaBIOS() throws {
        let scratch = Workspace(root: NSTemporaryDirectory() + "sevvm-plan-\(UUID().uuidString)")
        var definition = VMDefinition(name: "tiny", memoryMiB: 256, vcpus: 1)
        definition.accel = .tcg
        let plan = try LaunchPlanner.discoverAndPlan(for: definition, mode: nil, accel: nil, workspace: scratch)
        #expect(plan.qemu.version >= QEMUVersion(major: 2, minor: 0, micro: 0))
        #expect(plan.firmware == nil)
        #expect(plan.accel == "tcg")
        #expect(!plan.arguments.contains("-bios"))
    }

    /// On a host without SEV (like the CI machine) a real SNP launch is refused with advice; a dry run still shows the command.
    @Test(.enabled(if: hasQEMU && hostLacksSEV, "needs QEMU and a host without SEV"))
    func snpOnAHostWithoutSEVIsExplained() throws {
        let scratch = Workspace(root: NSTemporaryDirectory() + "sevvm-plan-\(UUID().uuidString)")
        let definition = VMDefinition(name: "web", mode: .snp)
        do {
            _ = try LaunchPlanner.discoverAndPlan(for: definition, mode: nil, accel: nil, workspace: scratch)
            Issue.record("an SNP launch plan was made on a host without SEV")
        } catch let error as LaunchError {
            #expect(error == .cbitposUnknown(mode: .snp))
            #expect(error.description.contains("sevvm caps"))
        } catch {
            // No single-file OVMF with SEV metadata installed: discovery says so.
            #expect(String(describing: error).contains("OVMF"))
        }
    }

    @Test func varsCopyIsMadeOnceFromTheTemplate() throws {
        let root = NSTemporaryDirectory() + "sevvm-vars-\(UUID().uuidString)"
        try AtomicFile.makeDirectory(root)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let template = root + "/VARS.fd"
        try AtomicFile.write(Data(repeating: 0x5A, count: 8192), to: template)
        let firmware = FirmwareChoice(
            code: root + "/CODE.fd", vars: template, singleFile: false, origin: "test", hasSEVMetadata: true, hasHashesTable: false)
        let plan = try LaunchPlanner.plan(
            for: VMDefinition(name: "web", mode: .sev), mode: nil, accel: nil, host: genoa, qemu: qemu10, firmware: firmware,
            workspace: Workspace(root: root))
        #expect(plan.varsCopy == root + "/images/web-OVMF_VARS.fd")
        #expect(try plan.ensureVarsCopy())
        #expect(try !plan.ensureVarsCopy())
        #expect(FileManager.default.contents(atPath: root + "/images/web-OVMF_VARS.fd") == Data(repeating: 0x5A, count: 8192))
    }
}
