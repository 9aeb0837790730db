// Launch plans: golden argv per mode, the checks that refuse what cannot start, and libvirt's SNP object as a peer.
import Definitions
import Foundation
import HostProbe
import Launch
import QMP
import Support
import Testing

/// Fixtures live next to this file; golden files are rewritten there when SEVVM_RECORD_GOLDEN is set.
let fixturesDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures").path

let workspace = Workspace(root: "/srv/sevvm")
let genoa = SEVHostFacts(cbitpos: 51, reducedPhysBits: 1, cpuSupportsSEV: true, cpuSupportsSEVES: true, cpuSupportsSNP: true)
let noSEVHost = SEVHostFacts()
let qemu10 = QEMUInstallation(path: "/usr/bin/qemu-system-x86_64", version: QEMUVersion(major: 10, minor: 0, micro: 2), origin: "system")
let singleOVMF = FirmwareChoice(
    code: "/usr/share/ovmf/OVMF.fd", vars: nil, singleFile: true, origin: "system", hasSEVMetadata: true, hasHashesTable: true)
let splitOVMF = FirmwareChoice(
    code: "/usr/share/OVMF/OVMF_CODE_4M.fd", vars: "/usr/share/OVMF/OVMF_VARS_4M.fd", singleFile: false, origin: "system",
    hasSEVMetadata: true, hasHashesTable: false)

/// A definition using most fields, as `sevvm create` would write it.
func richDefinition(mode: GuestMode) -> VMDefinition {
    var definition = VMDefinition(name: "web", mode: mode, memoryMiB: 4096, vcpus: 4)
    definition.disks = [Disk(path: "images/web.qcow2", format: "qcow2"), Disk(path: "/data/logs.raw", format: "raw", bus: .virtioBlk)]
    definition.cdrom = "/isos/debian-12.iso"
    definition.directBoot = DirectBoot(kernel: "images/vmlinuz", initrd: "images/initrd.img", append: "console=ttyS0 root=/dev/sda1")
    definition.network = Network(mode: .user, forwards: [PortForward(hostPort: 2222, guestPort: 22)])
    definition.created = CreatedFiles(disks: ["images/web.qcow2"], varsCopy: mode == .snp ? nil : "images/web-OVMF_VARS.fd")
    definition.pciPassthrough = ["0000:41:00.0"]
    definition.extraArgs = ["-d", "guest_errors"]
    if mode == .snp {
        definition.snp = SNPSettings(
            policy: SNPPolicy(flags: [.smt, .debug]), hostData: Data(repeating: 7, count: 32).base64EncodedString(),
            idBlock: fixturesDirectory + "/id-block.bin", idAuth: fixturesDirectory + "/id-auth.bin", authorKeyEnabled: true,
            vcekDisabled: true, guestVisibleWorkarounds: Data(repeating: 0, count: 16).base64EncodedString(), kernelHashes: true)
    }
    return definition
}

@Suite struct GoldenPlanTests {
    struct Golden: Sendable, CustomTestStringConvertible {
        var file: String
        var mode: GuestMode
        var testDescription: String { file }
    }

    static let goldens = [
        Golden(file: "snp.args", mode: .snp), Golden(file: "sev-es.args", mode: .sevES), Golden(file: "sev.args", mode: .sev),
        Golden(file: "none.args", mode: .none),
    ]

    @Test(arguments: goldens) func planMatchesGoldenArgv(_ golden: Golden) throws {
        let firmware = golden.mode == .snp ? singleOVMF : splitOVMF
        let plan = try LaunchPlanner.plan(
            for: richDefinition(mode: golden.mode), mode: nil, accel: nil, host: genoa, qemu: qemu10, firmware: firmware,
            workspace: workspace)
        let path = fixturesDirectory + "/" + golden.file
        let actual = plan.arguments.joined(separator: "\n") + "\n"
        if ProcessInfo.processInfo.environment["SEVVM_RECORD_GOLDEN"] != nil {
            try AtomicFile.write(actual, to: path)
            Issue.record("recorded \(path); check it by hand and run again without SEVVM_RECORD_GOLDEN")
            return
        }
        let expected = try String(contentsOfFile: path, encoding: .utf8)
        #expect(actual == expected)
        #expect(plan.mode == golden.mode)
        #expect(plan.accel == "kvm")
        #expect(plan.commandLine.first == qemu10.path)
        // start measures the expected digest from the very definition the argv came from.
        #expect(plan.definition == richDefinition(mode: golden.mode))
    }

    @Test func snpPlanHasTheFactsSheetShape() throws {
        let plan = try LaunchPlanner.plan(
            for: VMDefinition(name: "tiny", mode: .snp, memoryMiB: 2048, vcpus: 2), mode: nil, accel: nil, host: genoa, qemu: qemu10,
            firmware: singleOVMF, workspace: workspace)
        #expect(
            plan.arguments == [
                "-nodefaults",
                "-machine", "q35,confidential-guest-support=sev0,vmport=off,memory-backend=ram1",
                "-accel", "kvm", "-cpu", "EPYC-v4", "-smp", "2", "-m", "2048M",
                "-object", "memory-backend-memfd,id=ram1,size=2048M,share=true,prealloc=false",
                "-object", "sev-snp-guest,id=sev0,policy=0x30000,cbitpos=51,reduced-phys-bits=1",
                "-bios", "/usr/share/ovmf/OVMF.fd",
                "-no-reboot",
            ])
        #expect(plan.varsCopy == nil)
        #expect(plan.warnings.isEmpty)
    }

    @Test func sevESPlanUsesPflashWithTheVMsVarsCopy() throws {
        let plan = try LaunchPlanner.plan(
            for: VMDefinition(name: "es", mode: .sevES), mode: nil, accel: nil, host: genoa, qemu: qemu10, firmware: splitOVMF,
            workspace: workspace)
        #expect(plan.arguments.contains("sev-guest,id=sev0,policy=0x5,cbitpos=51,reduced-phys-bits=1"))
        #expect(plan.arguments.contains("if=pflash,format=raw,unit=0,file=/usr/share/OVMF/OVMF_CODE_4M.fd,readonly=on"))
        #expect(plan.arguments.contains("if=pflash,format=raw,unit=1,file=/srv/sevvm/images/es-OVMF_VARS.fd"))
        #expect(plan.varsCopy == "/srv/sevvm/images/es-OVMF_VARS.fd")
        #expect(!plan.arguments.contains("-bios"))
    }

    @Test func modeOverrideAndPolicyESBitAreReconciled() throws {
        var definition = VMDefinition(name: "web", mode: .snp)
        definition.sev.policy = SEVPolicy(rawValue: 0x1)
        let plan = try LaunchPlanner.plan(
            for: definition, mode: .sevES, accel: nil, host: genoa, qemu: qemu10, firmware: splitOVMF, workspace: workspace)
        #expect(plan.mode == .sevES)
        #expect(plan.arguments.contains("sev-guest,id=sev0,policy=0x5,cbitpos=51,reduced-phys-bits=1"))
        #expect(plan.warnings == ["SEV-ES needs the ES bit (0x4) in the guest policy; using 0x5"])
    }

    @Test func unencryptedTCGGuestHasNoSEVOptions() throws {
        var definition = VMDefinition(name: "tiny", memoryMiB: 256, vcpus: 1)
        definition.directBoot = DirectBoot(kernel: "/k", initrd: "/i", append: "console=ttyS0")
        let plan = try LaunchPlanner.plan(
            for: definition, mode: nil, accel: "tcg", host: noSEVHost, qemu: qemu10, firmware: nil, workspace: workspace)
        #expect(
            plan.arguments == [
                "-nodefaults", "-machine", "q35", "-accel", "tcg", "-cpu", "EPYC-v4", "-smp", "1", "-m", "256M",
                "-kernel", "/k", "-initrd", "/i", "-append", "console=ttyS0",
            ])
    }

    @Test func hugepagesBackTheMemoryWithHugetlbfs() throws {
        var definition = VMDefinition(name: "big", mode: .sev, memoryMiB: 8192)
        definition.hugepages = true
        let plan = try LaunchPlanner.plan(
            for: definition, mode: nil, accel: nil, host: genoa, qemu: qemu10, firmware: splitOVMF, workspace: workspace)
        #expect(plan.arguments.contains("memory-backend-memfd,id=ram1,size=8192M,share=true,hugetlb=on,hugetlbsize=2M,prealloc=false"))
        #expect(plan.arguments.contains("q35,confidential-guest-support=sev0,vmport=off,memory-backend=ram1"))
    }

    @Test func dryRunCommandIsPasteable() {
        let text = LaunchPlan.shellCommand(["/usr/bin/qemu-system-x86_64", "-append", "console=ttyS0 quiet", "-no-reboot", "-name", "it's"])
        #expect(text == "/usr/bin/qemu-system-x86_64 \\\n    -append 'console=ttyS0 quiet' \\\n    -no-reboot \\\n    -name 'it'\\''s'")
    }
}

@Suite struct PlanRefusalTests {
    struct Refusal: Sendable, CustomTestStringConvertible {
        var label: String
        var mode: GuestMode
        var accel: String?
        var host: SEVHostFacts
        var qemu: QEMUInstallation
        var firmware: FirmwareChoice?
        var expected: LaunchError
        var testDescription: String { label }
    }

    static let qemu90 = QEMUInstallation(
        path: "/opt/qemu/bin/qemu-system-x86_64", version: QEMUVersion(major: 9, minor: 0, micro: 4), origin: "--qemu")
    static let qemu5 = QEMUInstallation(
        path: "/usr/bin/qemu-system-x86_64", version: QEMUVersion(major: 5, minor: 2, micro: 0), origin: "system")
    static let noMetadata = FirmwareChoice(
        code: "/old/OVMF.fd", vars: nil, singleFile: true, origin: "--firmware", hasSEVMetadata: false, hasHashesTable: false)

    static let refusals: [Refusal] = [
        Refusal(
            label: "SNP on QEMU 9.0", mode: .snp, accel: nil, host: genoa, qemu: qemu90, firmware: singleOVMF,
            expected: .qemuTooOld(mode: .snp, found: "9.0.4", required: "9.1.0", path: qemu90.path)),
        Refusal(
            label: "SEV-ES on QEMU 5.2", mode: .sevES, accel: nil, host: genoa, qemu: qemu5, firmware: splitOVMF,
            expected: .qemuTooOld(mode: .sevES, found: "5.2.0", required: "6.0.0", path: qemu5.path)),
        Refusal(
            label: "SNP with split firmware", mode: .snp, accel: nil, host: genoa, qemu: qemu10, firmware: splitOVMF,
            expected: .snpNeedsSingleFileFirmware(path: splitOVMF.code)),
        Refusal(
            label: "SNP with firmware lacking SEV metadata", mode: .snp, accel: nil, host: genoa, qemu: qemu10, firmware: noMetadata,
            expected: .firmwareLacksSEVMetadata(path: noMetadata.code)),
        Refusal(
            label: "SNP without firmware", mode: .snp, accel: nil, host: genoa, qemu: qemu10, firmware: nil,
            expected: .firmwareMissing(mode: .snp)),
        Refusal(
            label: "SNP on a host without SEV", mode: .snp, accel: nil, host: noSEVHost, qemu: qemu10, firmware: singleOVMF,
            expected: .cbitposUnknown(mode: .snp)),
        Refusal(
            label: "SEV under TCG", mode: .sev, accel: "tcg", host: genoa, qemu: qemu10, firmware: splitOVMF,
            expected: .encryptionNeedsKVM(mode: .sev)),
        Refusal(
            label: "unknown accelerator", mode: .none, accel: "hvf", host: genoa, qemu: qemu10, firmware: nil,
            expected: .unknownAccelerator("hvf")),
    ]

    @Test(arguments: refusals) func refuses(_ refusal: Refusal) {
        #expect(throws: refusal.expected) {
            try LaunchPlanner.plan(
                for: VMDefinition(name: "web", mode: refusal.mode), mode: nil, accel: refusal.accel, host: refusal.host, qemu: refusal.qemu,
                firmware: refusal.firmware, workspace: workspace)
        }
    }

    @Test func dryRunWarnsInsteadOfRefusing() throws {
        let plan = try LaunchPlanner.plan(
            for: VMDefinition(name: "web", mode: .snp), mode: nil, accel: "tcg", host: noSEVHost, qemu: qemu10, firmware: singleOVMF,
            workspace: workspace, purpose: .dryRun)
        #expect(plan.arguments.contains("sev-snp-guest,id=sev0,policy=0x30000"))
        #expect(plan.warnings.count == 3)
        #expect(plan.warnings.first?.contains("needs KVM") == true)
        #expect(plan.warnings.contains { $0.contains("sevvm caps") && $0.contains("cbitpos=51") })
    }

    @Test func definitionOverridesTheHostCBit() throws {
        var definition = VMDefinition(name: "web", mode: .snp)
        definition.cbitpos = 47
        definition.reducedPhysBits = 1
        let plan = try LaunchPlanner.plan(
            for: definition, mode: nil, accel: nil, host: noSEVHost, qemu: qemu10, firmware: singleOVMF, workspace: workspace)
        #expect(plan.arguments.contains("sev-snp-guest,id=sev0,policy=0x30000,cbitpos=47,reduced-phys-bits=1"))
    }

    @Test func kernelHashesNeedAHashesTable() {
        var definition = VMDefinition(name: "web", mode: .sev)
        definition.sev.kernelHashes = true
        #expect(throws: LaunchError.firmwareLacksHashesTable(path: splitOVMF.code)) {
            try LaunchPlanner.plan(
                for: definition, mode: nil, accel: nil, host: genoa, qemu: qemu10, firmware: splitOVMF, workspace: workspace)
        }
    }

    @Test func wrongSizedIDBlockIsRefused() throws {
        var definition = VMDefinition(name: "web", mode: .snp)
        definition.snp.idBlock = fixturesDirectory + "/id-auth.bin"
        #expect(
            throws: LaunchError.wrongLength(
                field: "snp.idBlock", path: definition.snp.idBlock ?? "", length: 4096, allowed: "exactly 96 bytes")
        ) {
            try LaunchPlanner.plan(
                for: definition, mode: nil, accel: nil, host: genoa, qemu: qemu10, firmware: singleOVMF, workspace: workspace)
        }
    }
}

/// Our sev-snp-guest object against the one libvirt generates for the same launchSecurity settings.
@Suite struct LibvirtPeerTests {
    @Test func snpObjectMatchesLibvirts() throws {
        let args = try String(contentsOfFile: fixturesDirectory + "/libvirt-launch-security-sev-snp.x86_64-latest.args", encoding: .utf8)
        let start = try #require(args.range(of: #"-object '{"qom-type":"sev-snp-guest""#))
        let jsonStart = args.index(start.lowerBound, offsetBy: "-object '".count)
        let jsonEnd = try #require(args[jsonStart...].firstIndex(of: "'"))
        let libvirt = try #require(try JSONSerialization.jsonObject(with: Data(args[jsonStart..<jsonEnd].utf8)) as? [String: Any])

        let directory = NSTemporaryDirectory() + "sevvm-launch-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let idBlockText = try #require(libvirt["id-block"] as? String)
        let idAuthText = try #require(libvirt["id-auth"] as? String)
        try #require(Data(base64Encoded: idBlockText)).write(to: URL(fileURLWithPath: directory + "/id-block.bin"))
        try #require(Data(base64Encoded: idAuthText)).write(to: URL(fileURLWithPath: directory + "/id-auth.bin"))

        var definition = VMDefinition(name: "QEMUGuest1", mode: .snp)
        definition.snp = SNPSettings(
            policy: SNPPolicy(rawValue: UInt64(try #require(libvirt["policy"] as? Int))), hostData: libvirt["host-data"] as? String,
            idBlock: directory + "/id-block.bin", idAuth: directory + "/id-auth.bin", authorKeyEnabled: true, vcekDisabled: true,
            guestVisibleWorkarounds: libvirt["guest-visible-workarounds"] as? String)
        try definition.validate()
        let milan = SEVHostFacts(cbitpos: 47, reducedPhysBits: 1, cpuSupportsSEV: true, cpuSupportsSEVES: true, cpuSupportsSNP: true)
        let plan = try LaunchPlanner.plan(
            for: definition, mode: nil, accel: nil, host: milan, qemu: qemu10, firmware: singleOVMF, workspace: workspace)
        let object = try #require(plan.arguments.first { $0.hasPrefix("sev-snp-guest,") })

        // Same properties, same values (libvirt writes JSON, we write key=value; ids differ by design).
        var ours: [String: String] = [:]
        for pair in object.split(separator: ",").dropFirst() {
            let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
            ours[parts[0]] = parts.count > 1 ? parts[1] : ""
        }
        var theirs: [String: String] = [:]
        let booleans: Set = ["author-key-enabled", "vcek-disabled", "kernel-hashes"]
        for (key, value) in libvirt where key != "qom-type" {
            if booleans.contains(key) {
                theirs[key] = (value as? Bool) == true ? "on" : "off"
            } else if let number = value as? Int {
                theirs[key] = String(number)
            } else {
                theirs[key] = "\(value)"
            }
        }
        ours["id"] = nil
        theirs["id"] = nil
        ours["policy"] = ours["policy"].flatMap { UInt64($0.dropFirst(2), radix: 16) }.map { String($0) }
        #expect(ours == theirs)
    }
}
