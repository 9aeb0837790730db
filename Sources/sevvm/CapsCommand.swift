// `sevvm caps`: is this host ready for SEV, SEV-ES and SNP, and if not, exactly why.
import ArgumentParser
import FoundationEssentials
import HostProbe
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// The modes `--mode` accepts (no "none": every host runs unencrypted guests).
enum CapsMode: String, ExpressibleByArgument, CaseIterable {
    case sev
    case sevES = "sev-es"
    case snp

    var guestMode: GuestMode {
        switch self {
        case .sev: return .sev
        case .sevES: return .sevES
        case .snp: return .snp
        }
    }
}

/// Prints the host report. With `--json` the output is HostReport's schema, version 1 (docs/caps-json.md):
/// `schemaVersion`, `host` (cpu, encryption, kernel, firmware versions, chipID), `facts` (SEVHostFacts:
/// cbitpos, reducedPhysBits, what CPU and KVM support), `checks` (name, category, status PASS|FAIL|WARN|SKIP,
/// message, hint, parent, gates), `verdicts` (mode, ready, blocking, unverified), `qemu`, `qemuSupport`,
/// `firmware` (per mode), `capabilities` (cbitpos, reducedPhysBits, cpu0ID, pdhSize, certChainSize,
/// pdh and certChain certificate headers). Fields are only added, never renamed, within a schema version.
struct CapsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "caps",
        abstract: "Check whether this host can run SEV, SEV-ES and SEV-SNP guests, and say why not.",
        discussion: """
            Runs a tree of checks, as snphost does: CPU (CPUID 0x8000001F), BIOS (SYSCFG and RMP \
            MSRs, when readable), kernel and its SEV messages, kvm_amd parameters, the AMD Secure \
            Processor (/dev/sev: firmware version, platform state, TCB), ASIDs, IOMMU, memlock, the \
            QEMU and OVMF sevvm would use, query-sev-capabilities over QMP, and libvirt. A check \
            runs only when its parent passed; every FAIL comes with its fix. The end shows one \
            verdict per mode with the checks that block it.

            query-sev-capabilities is asked of a throw-away QEMU (-machine none -accel kvm -S), \
            killed right after, or of a running QEMU with --qmp SOCKET.

            Examples:
              sevvm caps                        report; exit 0 if any SEV mode is ready
              sevvm caps --mode snp             exit 3 unless SNP guests can start
              sevvm caps --json | jq .facts     C-bit position and what launch uses
              sevvm caps --export-certs certs/  write pdh.cert, cert_chain.cert

            Exit status: 0 when the mode asked for (default: the best available) is ready, \
            3 when it is not, 1 on other errors.
            """
    )

    @OptionGroup var workspace: WorkspaceOptions
    @OptionGroup var output: OutputOptions

    @Option(help: "The mode whose readiness sets the exit status (sev, sev-es, snp); default: any.")
    var mode: CapsMode?

    @Option(help: ArgumentHelp("The qemu-system-x86_64 to check (default: the workspace build, then PATH).", valueName: "PATH"))
    var qemu: String?

    @Option(
        help: ArgumentHelp("Ask query-sev-capabilities of the QEMU on this QMP socket instead of a throw-away one.", valueName: "SOCKET"))
    var qmp: String?

    @Option(help: ArgumentHelp("Write the PDH and certificate chain (pdh.cert, cert_chain.cert) into this folder.", valueName: "DIR"))
    var exportCerts: String?

    func run() async throws {
        let options = ProbeOptions(
            workspace: workspace.resolved, qemuPath: qemu, capabilities: qmp.map { .socket($0) } ?? .throwawayQEMU)
        let report = await HostProber().probe(options)

        if output.json {
            StandardStream.write(try report.json())
            StandardStream.write(Data("\n".utf8))
        } else {
            StandardStream.write(Data(report.text(terminal: Terminal()).utf8))
        }

        if let exportCerts {
            guard let capabilities = report.capabilities else {
                throw fail(
                    "--export-certs: query-sev-capabilities gave no certificates (see the qmp.capabilities check)",
                    code: ExitCodes.hostNotReady)
            }
            do {
                let written = try capabilities.exportCertificates(to: exportCerts)
                printError("wrote \(written.joined(separator: ", "))")
            } catch {
                throw fail("\(error)")
            }
        }

        if !report.isReady(for: mode?.guestMode) { throw ExitCode(ExitCodes.hostNotReady) }
    }
}
