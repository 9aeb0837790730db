// `sevvm measure` (the launch digest a verifier should expect) and `sevvm report` (check an SNP attestation report).
import ArgumentParser
import Definitions
import Firmware
import FoundationEssentials
import HostProbe
import Measure
import QMP
import Runtime
import Support

#if canImport(Glibc)
    import Glibc
#endif

struct MeasureCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "measure",
        abstract: "Compute the launch digest (measurement) an SEV, SEV-ES or SEV-SNP guest will have.",
        discussion: """
            The AMD secure processor hashes everything QEMU loads before the guest runs: the OVMF \
            firmware, SNP's special pages, one VMSA (initial register state) per vCPU and, with \
            kernel-hashes, the SHA-256 of the kernel, initrd and command line. A verifier compares \
            the guest's attestation report with this digest. The result is bit-exact with \
            sev-snp-measure, and the options have the same meanings and defaults, so scripts can switch.

            From a VM definition (firmware, vCPUs, CPU model, mode, direct boot with kernel-hashes):
              sevvm measure web
              sevvm measure web --vcpus 8          what it would be with 8 vCPUs

            Without a definition:
              sevvm measure --mode snp --vcpus 4 --vcpu-type EPYC-v4 --ovmf OVMF.fd
              sevvm measure --mode snp --vcpus 4 --vcpu-type EPYC-Milan --ovmf OVMF.fd \\
                  --kernel vmlinuz --initrd initrd.img --append "console=ttyS0"
              sevvm measure --mode sev-es --vcpus 2 --vcpu-sig 0x800f12 --ovmf OVMF.fd
              sevvm measure --mode sev --ovmf OVMF.fd --output-format base64
              sevvm measure --mode snp:ovmf-hash --ovmf OVMF.fd    firmware pages only (for --snp-ovmf-hash)

            One difference: for SNP, firmware without SEV metadata (e.g. a plain OVMF_CODE_4M.fd) is \
            refused, because QEMU cannot launch an SNP guest from it.

            vCPU types: \(VCPUType.names.joined(separator: ", ")).
            """
    )

    @Argument(help: "A defined VM to measure (its firmware, vCPUs, CPU model, mode and direct boot).")
    var name: String?

    @Option(help: ArgumentHelp("Guest mode: snp, sev-es (seves), sev, or snp:ovmf-hash.", valueName: "MODE"))
    var mode: String?

    @Option(help: ArgumentHelp("The OVMF firmware file the guest boots.", valueName: "PATH"))
    var ovmf: String?

    @Option(help: ArgumentHelp("Kernel measured with kernel-hashes (direct boot).", valueName: "PATH"))
    var kernel: String?

    @Option(help: ArgumentHelp("Initrd measured with the kernel.", valueName: "PATH"))
    var initrd: String?

    @Option(help: ArgumentHelp("Kernel command line measured with the kernel.", valueName: "CMDLINE"))
    var append: String?

    @Option(help: ArgumentHelp("Number of guest vCPUs (each adds one VMSA).", valueName: "N"))
    var vcpus: Int?

    @Option(help: ArgumentHelp("Guest vCPU type, a QEMU -cpu model such as EPYC-v4 or EPYC-Milan.", valueName: "CPUTYPE"))
    var vcpuType: String?

    @Option(help: ArgumentHelp("Guest vCPU signature (CPUID 1 EAX), e.g. 0x800f12.", valueName: "VALUE"))
    var vcpuSig: String?

    @Option(help: ArgumentHelp("Guest vCPU family (with --vcpu-model and --vcpu-stepping).", valueName: "FAMILY"))
    var vcpuFamily: Int?

    @Option(help: ArgumentHelp("Guest vCPU model.", valueName: "MODEL"))
    var vcpuModel: Int?

    @Option(help: ArgumentHelp("Guest vCPU stepping.", valueName: "STEPPING"))
    var vcpuStepping: Int?

    @Option(help: ArgumentHelp("The VMM that builds the initial vCPU state: qemu, ec2 or gce.", valueName: "VMMTYPE"))
    var vmmType = "qemu"

    @Option(help: ArgumentHelp("SEV features in the SNP VMSAs (bit 0 SNPActive; 0x20 DebugSwap).", valueName: "VALUE"))
    var guestFeatures = "0x1"

    @Option(help: ArgumentHelp("Precalculated SHA-384 of the OVMF pages (hex), from --mode snp:ovmf-hash.", valueName: "HASH"))
    var snpOVMFHash: String?

    @Option(help: ArgumentHelp("hex, base64 or json.", valueName: "FORMAT"))
    var outputFormat = "hex"

    @Flag(name: .shortAndLong, help: "Say which measurement was calculated.")
    var verbose = false

    @OptionGroup var workspace: WorkspaceOptions
    @OptionGroup var output: OutputOptions

    func run() async throws {
        try request.run()
    }

    /// The options as plain values.
    var request: MeasureRequest {
        MeasureRequest(
            name: name, mode: mode, ovmf: ovmf, kernel: kernel, initrd: initrd, append: append, vcpus: vcpus, vcpuType: vcpuType,
            vcpuSig: vcpuSig, vcpuFamily: vcpuFamily, vcpuModel: vcpuModel, vcpuStepping: vcpuStepping, vmmType: vmmType,
            guestFeatures: guestFeatures, snpOVMFHash: snpOVMFHash, outputFormat: outputFormat, verbose: verbose,
            workspace: workspace.workspace, json: output.json)
    }
}

/// What `sevvm measure` was asked, as plain values: made by MeasureCommand from ArgumentParser's
/// parse, or by QuickCommand straight from a plain argument list.
struct MeasureRequest: Equatable {
    var name: String?
    var mode: String?
    var ovmf: String?
    var kernel: String?
    var initrd: String?
    var append: String?
    var vcpus: Int?
    var vcpuType: String?
    var vcpuSig: String?
    var vcpuFamily: Int?
    var vcpuModel: Int?
    var vcpuStepping: Int?
    var vmmType = "qemu"
    var guestFeatures = "0x1"
    var snpOVMFHash: String?
    var outputFormat = "hex"
    var verbose = false
    var workspace: String?
    var json = false

    func run() throws {
        let format = json ? "json" : outputFormat
        guard ["hex", "base64", "json"].contains(format) else {
            throw ValidationError("--output-format must be hex, base64 or json (got '\(outputFormat)')")
        }
        try reportingDomainErrors {
            if mode == "snp:ovmf-hash" {
                guard let ovmf else { throw ValidationError("--mode snp:ovmf-hash needs --ovmf PATH") }
                let digest = try LaunchDigest.snpOVMFHash(try OVMFImage(path: ovmf))
                print(try render(digest, mode: .snp, format: format, input: nil))
                return
            }
            let input = try measurementInput()
            let digest = try LaunchDigest.compute(input)
            print(try render(digest, mode: input.mode, format: format, input: input))
        }
    }

    /// The inputs: the definition's launch parameters when NAME is given, each overridable by an option.
    func measurementInput() throws -> MeasurementInput {
        let explicitSignature = try VCPUType.signature(
            type: vcpuType, signature: vcpuSig, family: vcpuFamily, model: vcpuModel, stepping: vcpuStepping)
        guard let features = parseInteger(guestFeatures) else {
            throw MeasureError.invalidNumber(option: "--guest-features", value: guestFeatures)
        }
        let vmm = try VMMType(parsing: vmmType)
        let hash = try snpOVMFHash.map { text in
            guard let bytes = Measure.bytes(fromHex: text) else { throw MeasureError.invalidOVMFHash(text) }
            return bytes
        }
        var input: MeasurementInput
        if let name {
            let definition = try DefinitionStore(workspace: Workspace.resolve(option: workspace)).load(name)
            input = try LaunchMeasurement.input(
                for: definition, mode: try mode.map(parseMode), workspace: Workspace.resolve(option: workspace), firmware: ovmf)
            if let vcpus { input.vcpus = vcpus }
            if let explicitSignature { input.vcpuSignature = explicitSignature }
            if let kernel {
                input.kernel = kernel
                input.initrd = initrd
                input.append = append
            }
        } else {
            guard let mode else { throw ValidationError("give a VM NAME, or --mode snp|sev-es|sev with --ovmf PATH") }
            guard let ovmf else { throw ValidationError("--ovmf PATH is required without a VM NAME") }
            let guestMode = try parseMode(mode)
            guard guestMode == .sev || vcpus != nil else {
                throw ValidationError("missing --vcpus N in guest mode '\(mode)'")
            }
            input = MeasurementInput(
                mode: guestMode, ovmfPath: ovmf, vcpus: vcpus ?? 1, vcpuSignature: explicitSignature, kernel: kernel,
                initrd: initrd, append: append)
        }
        input.vmmType = vmm
        input.guestFeatures = features
        input.snpOVMFHash = hash
        return input
    }

    func parseMode(_ text: String) throws -> GuestMode {
        switch text.lowercased() {
        case "snp", "sev-snp": return .snp
        case "sev-es", "seves": return .sevES
        case "sev": return .sev
        default: throw ValidationError("--mode must be snp, sev-es, sev or snp:ovmf-hash (got '\(text)')")
        }
    }

    func render(_ digest: [UInt8], mode: GuestMode, format: String, input: MeasurementInput?) throws -> String {
        let hex = hexString(digest)
        let base64 = Data(digest).base64EncodedString()
        switch format {
        case "json":
            var object: [String: JSONValue] = ["mode": .string(mode.rawValue), "measurement": .string(hex), "base64": .string(base64)]
            if let input {
                object["ovmf"] = .string(input.ovmfPath)
                object["vcpus"] = .int(Int64(input.vcpus))
                object["vmmType"] = .string(input.vmmType.rawValue)
                object["guestFeatures"] = .string("0x" + String(input.guestFeatures, radix: 16))
                if let signature = input.vcpuSignature { object["vcpuSignature"] = .string("0x" + String(signature, radix: 16)) }
                if let kernel = input.kernel { object["kernel"] = .string(kernel) }
                if let initrd = input.initrd { object["initrd"] = .string(initrd) }
                if let append = input.append { object["append"] = .string(append) }
            }
            return try jsonText(JSONValue.object(object))
        default:
            let value = format == "base64" ? base64 : hex
            guard verbose else { return value }
            let names: [GuestMode: String] = [.snp: "SEV_SNP", .sevES: "SEV_ES", .sev: "SEV"]
            return "Calculated \(names[mode] ?? mode.displayName) guest measurement: \(value)"
        }
    }
}

/// Runs `body`, turning the domain errors measure and report meet into an actionable message and exit 1.
func reportingDomainErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as MeasureError {
        throw fail(error.description)
    } catch let error as FirmwareError {
        throw fail(error.description)
    } catch let error as DefinitionError {
        throw fail(error.description)
    } catch let error as HostProbeError {
        throw fail(error.description)
    }
}

/// What a VM definition means for its launch digest and its attestation report: the same mapping
/// `sevvm start` uses (firmware as discovered for the mode, -cpu model, kernel-hashes direct boot).
struct ReportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Read an SEV-SNP attestation report and check it against what sevvm expects for a VM.",
        usage: """
            sevvm report NAME REPORT-FILE [--vcek CERT] [--json]
            sevvm report --expect-from NAME REPORT-FILE [--vcek CERT] [--json]
            sevvm report REPORT-FILE [--vcek CERT] [--json]
            """,
        discussion: """
            Inside the guest, `snpguest report report.bin request.txt` (virtee/snpguest) asks the \
            secure processor for a 1184-byte report. sevvm prints its fields and compares the \
            measurement (the launch digest `sevvm measure NAME` computes), the policy and the host \
            data with the VM's definition, naming each mismatch. With --vcek, it also verifies the \
            report's ECDSA P-384 signature with the chip's VCEK certificate (DER), e.g. from \
            `snpguest fetch vcek der .` or AMD's key distribution service.

            The report file may be raw bytes or hex text.

            Examples:
              sevvm report web report.bin --vcek vcek.der
              sevvm report --expect-from web report.bin --json
              sevvm report report.bin                      just print the fields

            Exit status: 0 when every check passes, 1 on a mismatch or a bad signature.
            """
    )

    @Argument(help: ArgumentHelp("NAME REPORT-FILE, or just REPORT-FILE (with --expect-from NAME or none).", valueName: "NAME|REPORT-FILE"))
    var arguments: [String]

    @Option(help: ArgumentHelp("The VM whose expected values the report is compared with.", valueName: "NAME"))
    var expectFrom: String?

    @Option(help: ArgumentHelp("The VCEK certificate (DER) that should have signed the report.", valueName: "CERT"))
    var vcek: String?

    @Option(
        help: ArgumentHelp("The firmware to measure when the VM's firmware is auto (default: what start would pick).", valueName: "PATH"))
    var ovmf: String?

    @OptionGroup var workspace: WorkspaceOptions
    @OptionGroup var output: OutputOptions

    func validate() throws {
        guard (1...2).contains(arguments.count) else { throw ValidationError("give REPORT-FILE, or NAME REPORT-FILE") }
        if arguments.count == 2 && expectFrom != nil {
            throw ValidationError("give the VM either as NAME or as --expect-from NAME, not both")
        }
    }

    func run() async throws {
        let name = arguments.count == 2 ? arguments[0] : expectFrom
        let path = arguments[arguments.count - 1]
        try reportingDomainErrors {
            let report = try SNPAttestationReport(contentsOf: path)
            var checks: [ReportComparison] = []
            if let name {
                let definition = try DefinitionStore(workspace: workspace.resolved).load(name)
                let expectation = try LaunchMeasurement.expectation(for: definition, workspace: workspace.resolved, firmware: ovmf)
                checks = report.compare(with: expectation)
            }
            var signature: (valid: Bool, message: String)?
            if let vcek {
                do {
                    try report.verifySignature(with: try VCEKCertificate(path: vcek))
                    signature = (true, "valid (ECDSA P-384, \(vcek))")
                } catch let error as MeasureError {
                    signature = (false, error.description)
                }
            }
            print(
                output.json
                    ? try json(report, checks: checks, signature: signature, name: name)
                    : text(report, checks: checks, signature: signature, name: name))
            if checks.contains(where: { !$0.matches }) || signature?.valid == false { throw ExitCode(ExitCodes.failure) }
        }
    }

    func text(_ report: SNPAttestationReport, checks: [ReportComparison], signature: (valid: Bool, message: String)?, name: String?)
        -> String
    {
        let terminal = Terminal()
        var lines = report.fields.map { "\($0.name.padded(to: 18)) \($0.value)" }
        if let name {
            lines.append("")
            lines.append("compared with VM '\(name)':")
            for check in checks {
                if check.matches {
                    lines.append("  \(terminal.paint("ok", .green))        \(check.field)")
                } else {
                    lines.append(
                        "  \(terminal.paint("MISMATCH", .red))  \(check.field): the report has \(check.reported), sevvm expects \(check.expected)"
                    )
                }
            }
        }
        if let signature {
            lines.append(
                "signature: "
                    + (signature.valid ? terminal.paint(signature.message, .green) : terminal.paint("INVALID: " + signature.message, .red)))
        }
        return lines.joined(separator: "\n")
    }

    func json(_ report: SNPAttestationReport, checks: [ReportComparison], signature: (valid: Bool, message: String)?, name: String?)
        throws -> String
    {
        var fields: [String: JSONValue] = [:]
        for (field, value) in report.fields { fields[field] = .string(value) }
        var object: [String: JSONValue] = ["report": .object(fields)]
        if let name {
            object["vm"] = .string(name)
            object["checks"] = .array(
                checks.map {
                    [
                        "field": .string($0.field), "reported": .string($0.reported), "expected": .string($0.expected),
                        "matches": .bool($0.matches),
                    ]
                })
        }
        if let signature { object["signature"] = ["valid": .bool(signature.valid), "message": .string(signature.message)] }
        return try jsonText(JSONValue.object(object))
    }
}
