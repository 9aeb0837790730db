// Pure parts of a start: QEMU error advice, the runtime plumbing, shell rendering of the argv.
import Foundation
import Support
import Testing

@testable import Runtime

@Suite struct StartupAdviceTests {
    @Test(arguments: [
        ("qemu-system-x86_64: vm-type SEV-SNP not supported by KVM", "SEV-SNP is not enabled in this host's KVM"),
        ("sev_common_kvm_init: Failed to open /dev/sev '/dev/sev'", "could not open the SEV device"),
        ("sev_common_kvm_init: cbitpos check failed, host '51' requested '47'", "C-bit position"),
        ("SEV: Failed to locate SEV metadata header", "no SEV metadata"),
        ("KVM does not support guest_memfd", "guest_memfd"),
        ("SEV-SNP does not support SMM.", "cannot use SMM"),
        ("kvm_set_user_memory_region: KVM_SET_USER_MEMORY_REGION2 failed, slot=8, start=0xffc00000, size=0x400000, flags=0x2", "pflash"),
        ("qemu: could not load PC BIOS '/usr/share/OVMF/OVMF_CODE_4M.fd'", "single-file OVMF.fd"),
        ("sev_snp_launch_start: SNP_LAUNCH_START ret=-22 fw_error=0 ''", "rejected the SNP launch"),
    ])
    func knownErrorsGetAdvice(stderr: String, expected: String) {
        let advice = StartupAdvice.advice(forQEMUError: stderr)
        #expect(advice.count == 1)
        #expect(advice.first?.contains(expected) == true, "advice for \(stderr): \(advice)")
    }

    @Test func unknownErrorsGetNoAdvice() {
        #expect(StartupAdvice.advice(forQEMUError: "qemu-system-x86_64: -foo: invalid option").isEmpty)
    }

    @Test func snpAdvicePointsAtCaps() throws {
        let advice = try #require(StartupAdvice.advice(forQEMUError: "vm-type SEV-SNP not supported by KVM").first)
        #expect(advice.contains("sevvm caps"))
        #expect(!advice.contains("SEV is not enabled in this host's KVM. Run"))
    }

    @Test func startFailureMessageCarriesStderrAdviceAndLog() {
        let error = RuntimeError.qemuStartFailed(
            name: "web", status: 1, stderr: "qemu-system-x86_64: vm-type SEV-SNP not supported by KVM\n",
            advice: ["SNP is off"], log: "/w/run/web/qemu.log")
        let text = error.description
        #expect(text.contains("QEMU refused to start web (exit status 1)"))
        #expect(text.contains("vm-type SEV-SNP not supported by KVM"))
        #expect(text.contains("hint: SNP is off"))
        #expect(!text.contains("/w/run/web/qemu.log"))  // removed with the failed start's folder
        #expect(!error.isWrongState)
        #expect(RuntimeError.alreadyRunning(name: "web", pid: 1).isWrongState)
    }
}

@Suite struct QEMUCommandLineTests {
    let folder = RuntimeFolder(workspace: Workspace(root: "/w"), name: "web")

    @Test func plumbingUsesRelativeSocketsAndAbsolutePidfile() {
        let args = QEMUCommandLine.plumbing(name: "web", folder: folder)
        #expect(args.contains("-S"))
        #expect(args.contains("-daemonize"))
        #expect(args.contains("/w/run/web/qemu.pid"))
        #expect(args.contains("unix:qmp.sock,server=on,wait=off"))
        #expect(args.contains("unix:events.sock,server=on,wait=off"))
        #expect(args.contains("socket,id=console0,path=serial.sock,server=on,wait=off"))
        #expect(args.contains("chardev:console0"))
        #expect(args.filter { $0 == "-qmp" }.count == 2)
        // No socket path depends on the workspace's depth.
        #expect(!args.contains { $0.contains("unix:/") || $0.contains("path=/") })
    }

    @Test func renderPutsOneOptionPerLine() {
        let argv = ["/usr/bin/qemu-system-x86_64", "-S", "-m", "256", "-append", "console=ttyS0 quiet", "-nodefaults"]
        let text = QEMUCommandLine.render(argv, workingDirectory: "/deep path/run/web")
        #expect(
            text == """
                cd '/deep path/run/web' && \\
                /usr/bin/qemu-system-x86_64 \\
                    -S \\
                    -m 256 \\
                    -append 'console=ttyS0 quiet' \\
                    -nodefaults
                """)
    }
}
