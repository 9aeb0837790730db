// The definition commands: create, list, show, edit and rm of vms/NAME.json.
import ArgumentParser
import Definitions
import FoundationEssentials
import HostProbe
import Runtime
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// Turns a path typed on the command line into an absolute one (it was relative to the shell's folder).
private func absolute(_ path: String) -> String {
    path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
}

/// Maps a domain error to a message and exit code.
private func failure(_ error: Error) -> ExitCode {
    switch error {
    case DefinitionError.vmRunning:
        return fail(String(describing: error), code: ExitCodes.wrongState)
    default:
        return fail(String(describing: error))
    }
}

private func printJSON<T: Encodable>(_ value: T) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    StandardStream.write(try encoder.encode(value) + Data("\n".utf8))
}

struct CreateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Define a VM: write a validated vms/NAME.json (and its disk image and UEFI variables).",
        discussion: """
            The definition is what `sevvm start` launches; `sevvm edit` changes it later. Paths are \
            made absolute. --disk-size creates images/NAME.qcow2 with qemu-img; SEV and SEV-ES VMs \
            get their own copy of the OVMF variables (images/NAME-OVMF_VARS.fd). `sevvm rm` removes \
            exactly what create made, never a disk you brought.

            Examples:
              sevvm create web --mode snp --memory 4G --disk-size 20G \\
                    --cdrom debian-12.iso
              sevvm create tiny --memory 256M --vcpus 1 --accel tcg \\
                    --kernel images/vmlinuz --initrd images/initrd.gz \\
                    --append console=ttyS0
              sevvm create db --mode sev-es --disk /srv/db.qcow2 \\
                    --network user --forward 2222:22
              sevvm create att --mode snp --snp-flag debug \\
                    --host-data "$(head -c32 /dev/urandom | base64)"

            SNP policy: --policy 0x30000 (the default: SMT allowed), or flags added with --snp-flag \
            (smt, migrate-ma, debug, single-socket, cxl-allow, mem-aes-256-xts, rapl-dis, \
            ciphertext-hiding, page-swap-disable); bit 17 is always set. SEV/SEV-ES \
            policy: --policy 0x1 / 0x5 (the defaults).
            """)

    @Argument(help: "The VM's name: 1-64 characters from A-Z a-z 0-9 . _ -")
    var name: String

    @Option(help: "Memory encryption: none, sev, sev-es or snp.")
    var mode: String = "none"
    @Option(help: "Guest RAM, e.g. 512M, 2G.")
    var memory: String = "2G"
    @Option(help: "Number of virtual CPUs.")
    var vcpus: Int = 4
    @Option(help: "QEMU CPU model.")
    var cpu: String = VMDefinition.defaultCPU
    @Option(help: "QEMU machine type.")
    var machine: String = VMDefinition.defaultMachine
    @Option(help: ArgumentHelp("Attach an existing disk image (repeatable); its format is detected.", valueName: "PATH"))
    var disk: [String] = []
    @Option(help: ArgumentHelp("Bus for --disk images: virtio-scsi (default) or virtio-blk.", valueName: "BUS"))
    var diskBus: String = DiskBus.virtioSCSI.rawValue
    @Option(help: ArgumentHelp("Create images/NAME.qcow2 of this size (e.g. 20G) as the first disk.", valueName: "SIZE"))
    var diskSize: String?
    @Option(help: ArgumentHelp("An ISO to install from.", valueName: "ISO"))
    var cdrom: String?
    @Option(help: ArgumentHelp("Boot this kernel directly.", valueName: "PATH"))
    var kernel: String?
    @Option(help: ArgumentHelp("Initrd for --kernel.", valueName: "PATH"))
    var initrd: String?
    @Option(help: ArgumentHelp("Kernel command line for --kernel.", valueName: "CMDLINE"))
    var append: String?
    @Option(help: ArgumentHelp("OVMF to boot: auto (discover) or a path.", valueName: "PATH"))
    var firmware: String = "auto"
    @Option(help: "Networking: none or user (QEMU user-mode, with --forward for inbound ports).")
    var network: String?
    @Option(help: ArgumentHelp("Forward a host port to the guest (repeatable), e.g. 2222:22 or udp:5353:53.", valueName: "HOST:GUEST"))
    var forward: [String] = []
    @Option(help: "Serial console: serial (socket + log, `sevvm console`) or none.")
    var console: String = ConsoleMode.serial.rawValue
    @Option(help: "Guest policy: SNP (e.g. 0x30000) or SEV/SEV-ES (e.g. 0x5), per --mode.")
    var policy: String?
    @Option(help: ArgumentHelp("Add an SNP policy flag (repeatable): smt, debug, migrate-ma, single-socket, ...", valueName: "FLAG"))
    var snpFlag: [String] = []
    @Option(help: ArgumentHelp("SNP host data: 32 bytes, base64.", valueName: "BASE64"))
    var hostData: String?
    @Option(help: ArgumentHelp("SNP ID block file (96 bytes).", valueName: "PATH"))
    var idBlock: String?
    @Option(help: ArgumentHelp("SNP ID authentication file (up to 4096 bytes).", valueName: "PATH"))
    var idAuth: String?
    @Flag(help: "SNP: the ID auth carries an author key.")
    var authorKeyEnabled = false
    @Flag(help: "SNP: sign reports with the VLEK instead of the VCEK.")
    var vcekDisabled = false
    @Option(help: ArgumentHelp("SNP guest-visible workarounds: 16 bytes, base64.", valueName: "BASE64"))
    var guestVisibleWorkarounds: String?
    @Flag(help: "Measured direct boot: hash kernel, initrd and command line into the launch digest.")
    var kernelHashes = false
    @Option(help: "Override the host's C-bit position (CPUID 0x8000001F EBX[5:0]).")
    var cbitpos: Int?
    @Option(help: "Override the host's physical address reduction.")
    var reducedPhysBits: Int?
    @Option(help: "Accelerator: kvm (needed for SEV) or tcg.")
    var accel: String = Accelerator.kvm.rawValue
    @Option(help: ArgumentHelp("Pass a host PCI device through with vfio-pci (repeatable).", valueName: "DDDD:BB:DD.F"))
    var pci: [String] = []
    @Flag(help: "Back guest RAM with 2 MiB huge pages.")
    var hugepages = false
    @Option(
        parsing: .unconditionalSingleValue,
        help: ArgumentHelp("Append one word to QEMU's argv (repeatable), e.g. --extra-arg -d --extra-arg guest_errors.", valueName: "WORD"))
    var extraArg: [String] = []

    @OptionGroup var workspaceOptions: WorkspaceOptions
    @OptionGroup var output: OutputOptions

    func run() async throws {
        let workspace = workspaceOptions.resolved
        do {
            let definition = try makeDefinition()
            var request = ProvisionRequest()
            if let diskSize {
                guard let bytes = ByteSize.parseBytes(diskSize, plainUnit: 1 << 30), bytes > 0 else {
                    throw ValidationError("--disk-size '\(diskSize)' is not a size; use e.g. 20G or 512M")
                }
                request.newDiskBytes = bytes
            }
            var notes: [String] = []
            if definition.mode != .snp {
                // Split firmware keeps UEFI variables per VM: copy the template now (SNP boots a single file).
                if let choice = try? FirmwareDiscovery.find(
                    for: definition.mode, workspace: workspace, explicitPath: definition.firmware.explicitPath),
                    !choice.singleFile, let vars = choice.vars
                {
                    request.varsTemplate = vars
                } else if definition.mode.isEncrypted {
                    notes.append("no split OVMF found now; the UEFI variables copy will be made at the first start")
                }
            }
            let (written, warnings) = try DefinitionStore(workspace: workspace).create(definition, provisioning: request)
            if output.json {
                try printJSON(written)
            } else {
                print(
                    "created \(written.name) (\(written.mode.displayName), \(ByteSize.formatMiB(written.memoryMiB)), \(written.vcpus) vCPUs)"
                )
                for disk in written.created.disks { print("  disk image: \(workspace.resolve(disk))") }
                if let vars = written.created.varsCopy { print("  UEFI variables: \(workspace.resolve(vars))") }
                print("  start it with: sevvm start \(written.name)")
            }
            for warning in warnings + notes { printError("warning: \(warning)") }
        } catch let error as ValidationError {
            throw fail(error.message, code: 2)
        } catch {
            throw failure(error)
        }
    }

    /// The definition the flags describe (validated by the store).
    func makeDefinition() throws -> VMDefinition {
        try VMName.validate(name)
        guard let guestMode = GuestMode(rawValue: mode) else { throw ValidationError("--mode must be none, sev, sev-es or snp") }
        guard let mib = ByteSize.parseMiB(memory) else { throw ValidationError("--memory '\(memory)' is not a size; use e.g. 512M or 2G") }
        var definition = VMDefinition(name: name, mode: guestMode, memoryMiB: mib, vcpus: vcpus, cpu: cpu, machine: machine)
        definition.firmware = FirmwareSetting(firmware == "auto" ? "auto" : absolute(firmware))
        guard let bus = DiskBus(rawValue: diskBus) else { throw ValidationError("--disk-bus must be virtio-scsi or virtio-blk") }
        definition.disks = disk.map { Disk(path: absolute($0), bus: bus) }
        definition.cdrom = cdrom.map(absolute)
        if let kernel {
            definition.directBoot = DirectBoot(kernel: absolute(kernel), initrd: initrd.map(absolute), append: append)
        } else if initrd != nil || append != nil {
            throw ValidationError("--initrd and --append need --kernel")
        }
        let forwards = try forward.map { text in
            guard let parsed = PortForward(parsing: text) else { throw ValidationError("--forward '\(text)': use \(PortForward.syntax)") }
            return parsed
        }
        let networkMode = network ?? (forwards.isEmpty ? "none" : "user")
        guard let parsedNetwork = NetworkMode(rawValue: networkMode) else { throw ValidationError("--network must be none or user") }
        definition.network = Network(mode: parsedNetwork, forwards: forwards)
        guard let parsedConsole = ConsoleMode(rawValue: console) else { throw ValidationError("--console must be serial or none") }
        definition.console = parsedConsole
        try applyPolicy(to: &definition)
        definition.snp.hostData = hostData
        definition.snp.idBlock = idBlock.map(absolute)
        definition.snp.idAuth = idAuth.map(absolute)
        definition.snp.authorKeyEnabled = authorKeyEnabled
        definition.snp.vcekDisabled = vcekDisabled
        definition.snp.guestVisibleWorkarounds = guestVisibleWorkarounds
        definition.snp.kernelHashes = kernelHashes && guestMode == .snp
        definition.sev.kernelHashes = kernelHashes && guestMode != .snp
        definition.cbitpos = cbitpos
        definition.reducedPhysBits = reducedPhysBits
        guard let parsedAccel = Accelerator(rawValue: accel) else { throw ValidationError("--accel must be kvm or tcg") }
        definition.accel = parsedAccel
        definition.pciPassthrough = pci
        definition.hugepages = hugepages
        definition.extraArgs = extraArg
        return definition
    }

    private func applyPolicy(to definition: inout VMDefinition) throws {
        if definition.mode == .snp || !snpFlag.isEmpty {
            var snpPolicy = SNPPolicy.default
            if let policy, definition.mode == .snp {
                guard let parsed = SNPPolicy(parsing: policy) else {
                    throw ValidationError("--policy '\(policy)' is not an SNP policy; use e.g. 0x30000 or smt,debug")
                }
                snpPolicy = parsed
            }
            for flag in snpFlag {
                guard let parsed = SNPPolicy.Flag(rawValue: flag) else {
                    throw ValidationError(
                        "--snp-flag '\(flag)': use one of \(SNPPolicy.Flag.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                snpPolicy.insert(parsed)
            }
            definition.snp.policy = snpPolicy
        }
        if let policy, definition.mode != .snp {
            guard let parsed = SEVPolicy(parsing: policy) else {
                throw ValidationError("--policy '\(policy)' is not an SEV policy; use e.g. 0x1 (SEV) or 0x5 (SEV-ES)")
            }
            definition.sev.policy = parsed
        }
    }
}

/// One row of `sevvm list --json`.
private struct ListRow: Encodable {
    var name: String
    var state: String
    var pid: Int32?
    var mode: String?
    var memoryMiB: Int?
    var vcpus: Int?
    var disks: Int?
    var error: String?
}

struct ListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List every VM definition with its live state.",
        discussion: """
            State comes from each VM's pidfile lock (running, stopped, crashed); a definition that \
            cannot be read is listed as invalid with the reason, so one broken file hides nothing.

            Examples:
              sevvm list
              sevvm list --json | jq -r '.[] | select(.state == "running") | .name'
            """)

    @OptionGroup var workspaceOptions: WorkspaceOptions
    @OptionGroup var output: OutputOptions

    func run() async throws {
        let workspace = workspaceOptions.resolved
        let entries: [DefinitionStore.Entry]
        do {
            entries = try DefinitionStore(workspace: workspace).entries()
        } catch {
            throw failure(error)
        }
        var rows: [ListRow] = []
        for entry in entries {
            // The runtime's own verdict (pidfile lock, /proc, how the last run ended), without a
            // QMP round trip per VM: `list` must stay fast for many definitions.
            let live = VMRuntime(workspace: workspace, name: entry.name).status(queryMonitor: false)
            switch entry.result {
            case .success(let definition):
                rows.append(
                    ListRow(
                        name: entry.name, state: live.state.rawValue, pid: live.pid, mode: definition.mode.rawValue,
                        memoryMiB: definition.memoryMiB, vcpus: definition.vcpus, disks: definition.disks.count))
            case .failure(let error):
                rows.append(ListRow(name: entry.name, state: live.state.rawValue, pid: live.pid, error: error.description))
            }
        }
        if output.json {
            try printJSON(rows)
            return
        }
        if rows.isEmpty {
            print("no VMs defined in \(workspace.vmsDirectory); create one with `sevvm create NAME`")
            return
        }
        let terminal = Terminal()
        let width = max(4, rows.map(\.name.count).max() ?? 4)
        var text =
            terminal.paint(pad("NAME", width) + "  " + pad("STATE", 8) + "  " + pad("MODE", 7) + "  MEMORY  VCPUS  DISKS", .bold) + "\n"
        for row in rows {
            let state = pad(row.state, 8)
            let painted = terminal.paint(state, row.state == "running" ? .green : row.state == "crashed" ? .red : .dim)
            if let error = row.error {
                text += pad(row.name, width) + "  " + painted + "  " + terminal.paint("invalid: \(error)", .yellow) + "\n"
                continue
            }
            text +=
                pad(row.name, width) + "  " + painted + "  " + pad(row.mode ?? "", 7) + "  "
                + pad(ByteSize.formatMiB(row.memoryMiB ?? 0), 6) + "  " + pad(String(row.vcpus ?? 0), 5) + "  " + String(row.disks ?? 0)
                + "\n"
        }
        StandardStream.write(Data(text.utf8))
    }

    private func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
    }
}

/// `sevvm show --json`: the definition plus where it lives and whether it runs.
private struct ShowDocument: Encodable {
    var name: String
    var path: String
    var state: String
    var pid: Int32?
    var definition: VMDefinition
    var warnings: [String]
    /// The runtime facts (as `status --json` reports them): exact QEMU, firmware, digest, SEV state.
    var runtime: VMStatus
}

struct ShowCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Show one VM's definition and live state.",
        discussion: """
            Examples:
              sevvm show web
              sevvm show web --json | jq .definition.snp.policy
            """)

    @Argument(help: "The VM's name.")
    var name: String

    @OptionGroup var workspaceOptions: WorkspaceOptions
    @OptionGroup var output: OutputOptions

    func run() async throws {
        let workspace = workspaceOptions.resolved
        let definition: VMDefinition
        do {
            definition = try DefinitionStore(workspace: workspace).load(name)
        } catch {
            throw failure(error)
        }
        let live = VMRuntime(workspace: workspace, name: name).status()
        let warnings = DefinitionStore.warnings(for: definition)
        if output.json {
            try printJSON(
                ShowDocument(
                    name: name, path: workspace.definitionPath(for: name), state: live.state.rawValue, pid: live.pid,
                    definition: definition, warnings: warnings, runtime: live))
            return
        }
        print(Self.describe(definition, live: live, workspace: workspace))
        if live.mode != nil {
            // The last run's facts: exact QEMU, firmware, expected digest, SEV state, guest report.
            print(
                "runtime:\n"
                    + live.render(terminal: Terminal()).split(separator: "\n").dropFirst().map { "  " + $0 }.joined(separator: "\n"))
        }
        for warning in warnings { printError("warning: \(warning)") }
    }

    /// A human summary: one fact per line.
    static func describe(_ definition: VMDefinition, live: VMStatus, workspace: Workspace) -> String {
        var lines = [
            "name:      \(definition.name)",
            "state:     \(live.state.rawValue)\(live.pid.map { " (pid \($0))" } ?? "")\(live.reason.map { ": \($0)" } ?? "")",
            "file:      \(workspace.definitionPath(for: definition.name))",
            "mode:      \(definition.mode.rawValue) (\(definition.mode.displayName))",
            "memory:    \(ByteSize.formatMiB(definition.memoryMiB))",
            "vcpus:     \(definition.vcpus) × \(definition.cpu), machine \(definition.machine), accel \(definition.accel.rawValue)",
            "firmware:  \(definition.firmware)",
        ]
        for (index, disk) in definition.disks.enumerated() {
            lines.append(
                "disk \(index):    \(disk.path) (\(disk.format ?? "format unknown"), \(disk.bus.rawValue)\(disk.readOnly ? ", read-only" : ""))"
            )
        }
        if let cdrom = definition.cdrom { lines.append("cdrom:     \(cdrom)") }
        if let boot = definition.directBoot {
            lines.append("kernel:    \(boot.kernel)")
            if let initrd = boot.initrd { lines.append("initrd:    \(initrd)") }
            if let append = boot.append { lines.append("append:    \(append)") }
        }
        let forwards = definition.network.forwards.map(\.description).joined(separator: ", ")
        lines.append("network:   \(definition.network.mode.rawValue)\(forwards.isEmpty ? "" : " (forwards \(forwards))")")
        lines.append("console:   \(definition.console.rawValue)")
        switch definition.mode {
        case .snp:
            let flags = definition.snp.policy.flags.map(\.rawValue).joined(separator: ",")
            lines.append("policy:    \(definition.snp.policy) (\(flags.isEmpty ? "no flags" : flags))")
            if let hostData = definition.snp.hostData { lines.append("host-data: \(hostData)") }
            if let idBlock = definition.snp.idBlock { lines.append("id-block:  \(idBlock)") }
            if let idAuth = definition.snp.idAuth { lines.append("id-auth:   \(idAuth)") }
        case .sev, .sevES:
            let policy = definition.sev.policy ?? (definition.mode == .sevES ? .sevESDefault : .sevDefault)
            lines.append("policy:    \(policy)\(definition.sev.policy == nil ? " (default)" : "")")
        case .none:
            break
        }
        if let cbitpos = definition.cbitpos { lines.append("cbitpos:   \(cbitpos) (override)") }
        if let reduced = definition.reducedPhysBits { lines.append("reduced-phys-bits: \(reduced) (override)") }
        if !definition.pciPassthrough.isEmpty { lines.append("vfio-pci:  \(definition.pciPassthrough.joined(separator: ", "))") }
        if definition.hugepages { lines.append("hugepages: on") }
        if !definition.extraArgs.isEmpty { lines.append("extra:     \(definition.extraArgs.joined(separator: " "))") }
        return lines.joined(separator: "\n")
    }
}

struct EditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "edit",
        abstract: "Change fields of a VM definition, validated and written atomically.",
        discussion: """
            Keys are the JSON field names joined by dots (see `sevvm show NAME --json`); list \
            fields take comma lists, anything starting with [ { or " is read as JSON, and null \
            removes an optional field. A running VM picks the change up at its next start.

            Examples:
              sevvm edit web --set memory=8G --set vcpus=8
              sevvm edit web --set snp.policy=smt,debug --set snp.hostData=$(head -c32 /dev/urandom | base64)
              sevvm edit web --set network.mode=user --set network.forwards=2222:22,8080:80
              sevvm edit web --set disks.0.bus=virtio-blk --set cdrom=null
              sevvm edit web --set cbitpos=51 --set reducedPhysBits=1
            """)

    @Argument(help: "The VM's name.")
    var name: String

    @Option(name: .customLong("set"), help: ArgumentHelp("A change (repeatable).", valueName: "KEY=VALUE"))
    var assignments: [String] = []

    @OptionGroup var workspaceOptions: WorkspaceOptions
    @OptionGroup var output: OutputOptions

    func validate() throws {
        if assignments.isEmpty { throw ValidationError("nothing to change: give at least one --set KEY=VALUE") }
    }

    func run() async throws {
        let workspace = workspaceOptions.resolved
        do {
            let parsed = try assignments.map(DefinitionEditor.parseAssignment)
            let edited = try DefinitionStore(workspace: workspace).update(name) { definition in
                definition = try DefinitionEditor.apply(parsed, to: definition, file: workspace.definitionPath(for: name))
            }
            if output.json {
                try printJSON(edited)
            } else {
                print("updated \(name): \(parsed.map { "\($0.key)=\($0.value)" }.joined(separator: ", "))")
                if case .running = LiveState.probe(workspace: workspace, name: name) {
                    print("  \(name) is running; the change applies at its next start")
                }
            }
            for warning in DefinitionStore.warnings(for: edited) { printError("warning: \(warning)") }
        } catch {
            throw failure(error)
        }
    }
}

struct RmCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rm",
        abstract: "Remove a stopped VM: its definition and the files sevvm created for it.",
        discussion: """
            Removes vms/NAME.json, the disk images `create --disk-size` made, the VM's UEFI variables \
            copy and its runtime folder. Disks you attached with --disk stay unless --force-disk. \
            A running VM is refused (exit status 4): stop it first.

            Examples:
              sevvm rm web
              sevvm rm scratch --force-disk
            """)

    @Argument(help: "The VM's name.")
    var name: String

    @Flag(help: "Also delete disk images sevvm did not create.")
    var forceDisk = false

    @OptionGroup var workspaceOptions: WorkspaceOptions
    @OptionGroup var output: OutputOptions

    func run() async throws {
        let workspace = workspaceOptions.resolved
        do {
            let removed = try DefinitionStore(workspace: workspace).remove(name, deleteUserDisks: forceDisk)
            if output.json {
                try printJSON(["name": name, "removed": removed.joined(separator: "\n")])
            } else {
                print("removed \(name)")
                for path in removed { print("  \(path)") }
            }
        } catch {
            throw failure(error)
        }
    }
}
