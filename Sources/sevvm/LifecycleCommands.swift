// Running VMs: start, status, stop, kill, pause, resume, reset, console, logs, events (+ the hidden event recorder).
import ArgumentParser
import Definitions
import FoundationEssentials
import Runtime
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// The VM name argument shared by the lifecycle commands.
struct VMNameArgument: ParsableArguments {
    @Argument(help: "The VM's name (its definition is vms/NAME.json).")
    var name: String

    /// Refuses a VM sevvm does not know (`VMRuntime.checkKnown`) with the error's message and exit 1.
    func checkKnown(in workspace: Workspace) throws { try Self.checkKnown(name, in: workspace) }

    static func checkKnown(_ name: String, in workspace: Workspace) throws {
        do {
            try VMRuntime(workspace: workspace, name: name).checkKnown()
        } catch let error as DefinitionError {
            throw fail(error.description)
        }
    }
}

/// Runs a lifecycle action and maps failures to the documented exit codes.
private func runLifecycle<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let error as RuntimeError {
        throw fail(error.description, code: error.isWrongState ? ExitCodes.wrongState : ExitCodes.failure)
    } catch let error as ExitCode {
        throw error
    } catch {
        throw fail("\(error)")
    }
}

/// Writes one line to stdout at once (followers must not sit on buffered output).
private func writeLine(_ text: String) {
    StandardStream.write(Data((text + "\n").utf8))
}

struct StartCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "start",
        abstract: "Launch a VM's QEMU in the background and let its guest run.",
        discussion: """
            sevvm starts QEMU paused and daemonized; QEMU returns only after the machine (and the SEV \
            context) is set up, so a refusal is reported here with advice. Then a per-VM event \
            recorder attaches to a second QMP socket, SEV guests are checked with query-sev, and the \
            guest's CPUs are started. Runtime files live in run/NAME/ (pidfile, sockets, console.log, \
            qemu.log, events.jsonl, state.json with the exact argv).

            Examples:
              sevvm start web                   mode from the definition
              sevvm start web --snp             this time as an SEV-SNP guest
              sevvm start tiny --no-sev --accel tcg --console
              sevvm start web --dry-run         print the QEMU command line, start nothing
            """)

    @OptionGroup var vm: VMNameArgument
    @Flag(help: "Override the definition's mode for this start.")
    var mode: ModeFlag?
    @Option(help: ArgumentHelp("Accelerator: kvm (SEV needs it) or tcg (emulation, unencrypted only).", valueName: "kvm|tcg"))
    var accel: String?
    @Option(help: ArgumentHelp("Use this QEMU binary instead of the discovered one.", valueName: "PATH"))
    var qemu: String?
    @Flag(help: "Print QEMU's full command line (one option per line, shell-quoted) and start nothing.")
    var dryRun = false
    @Flag(help: "Attach to the serial console after starting (Ctrl-] detaches).")
    var console = false
    @OptionGroup var workspace: WorkspaceOptions

    enum ModeFlag: String, EnumerableFlag {
        case snp, sevEs, sev, noSev
        var mode: GuestMode {
            switch self {
            case .snp: return .snp
            case .sevEs: return .sevES
            case .sev: return .sev
            case .noSev: return .none
            }
        }
        static func help(for value: ModeFlag) -> ArgumentHelp? {
            switch value {
            case .snp: return "Start as an SEV-SNP guest."
            case .sevEs: return "Start as an SEV-ES guest."
            case .sev: return "Start as an SEV guest."
            case .noSev: return "Start without memory encryption."
            }
        }
    }

    func validate() throws {
        if let accel, !["kvm", "tcg"].contains(accel) {
            throw ValidationError("--accel must be kvm or tcg, not '\(accel)'")
        }
    }

    func run() async throws {
        let runtime = VMRuntime(workspace: workspace.resolved, name: vm.name)
        try await runLifecycle {
            let plan = try runtime.plan(.init(mode: mode?.mode, accel: accel, qemuPath: qemu, dryRun: dryRun))
            if dryRun {
                for warning in plan.warnings { printError("warning: \(warning)") }
                let argv = QEMUCommandLine.argv(plan: plan, name: vm.name, folder: runtime.folder)
                print(QEMUCommandLine.render(argv, workingDirectory: runtime.folder.path))
                return
            }
            for warning in plan.warnings { printError("warning: \(warning)") }
            let record = try await runtime.start(plan: plan, recorderExecutable: Self.selfExecutable())
            print(
                "\(vm.name) started (QEMU \(record.qemuVersion), pid \(record.pid.map(String.init) ?? "?"), \(plan.mode.displayName), \(plan.accel))"
            )
            if console { try ConsoleSession.attach(runtime) }
        }
    }

    /// This sevvm binary, which runs the event recorder.
    static func selfExecutable() -> String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }
}

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show a VM's state: stopped, starting, running, paused, shutdown or crashed (with the reason).",
        discussion: """
            For a running VM this asks QEMU (query-status, and query-sev for SEV guests) and shows what \
            the guest itself reported on its console, such as \
            "Memory Encryption Features active: SEV SEV-ES SEV-SNP". A QEMU that vanished (killed, \
            crashed) is reported as crashed with the reason from qemu.log or the last event, and its \
            stale pidfile and sockets are removed. `--json` always carries a `state` field.

            Examples:
              sevvm status web
              sevvm status web --json | jq -r .state
            """)

    @OptionGroup var vm: VMNameArgument
    @OptionGroup var output: OutputOptions
    @OptionGroup var workspace: WorkspaceOptions

    func run() async throws {
        try Self.run(name: vm.name, workspace: workspace.resolved, json: output.json)
    }

    /// The command itself, on plain values (QuickCommand calls it without ArgumentParser).
    static func run(name: String, workspace: Workspace, json: Bool) throws {
        try VMNameArgument.checkKnown(name, in: workspace)
        let status = VMRuntime(workspace: workspace, name: name).status()
        if json {
            print(try jsonText(status))
        } else {
            print(status.render(terminal: Terminal()))
        }
    }
}

struct StopCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stop",
        abstract: "Shut a VM down: press its ACPI power button, wait, then make QEMU quit.",
        discussion: """
            The guest gets --timeout seconds to power off by itself; then QEMU is told to quit. \
            --force skips the wait (like pulling the plug, but QEMU still closes its files cleanly).

            Examples:
              sevvm stop web
              sevvm stop web --timeout 10
              sevvm stop web --force
            """)

    @OptionGroup var vm: VMNameArgument
    @Option(help: ArgumentHelp("Seconds to wait for the guest to power off.", valueName: "S"))
    var timeout: Double = 60
    @Flag(help: "Do not wait for the guest: make QEMU quit at once.")
    var force = false
    @OptionGroup var workspace: WorkspaceOptions

    func run() async throws {
        try vm.checkKnown(in: workspace.resolved)
        let runtime = VMRuntime(workspace: workspace.resolved, name: vm.name)
        let exit = try await runLifecycle { try await runtime.stop(timeout: timeout, force: force) }
        print("\(vm.name) stopped: \(exit.reason)")
    }
}

struct KillCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kill",
        abstract: "End a VM's QEMU at once with SIGKILL (no guest shutdown).",
        discussion: "Use when `sevvm stop` cannot: the guest loses anything it had not written.\n\nExample:\n  sevvm kill web")

    @OptionGroup var vm: VMNameArgument
    @OptionGroup var workspace: WorkspaceOptions

    func run() async throws {
        try vm.checkKnown(in: workspace.resolved)
        let runtime = VMRuntime(workspace: workspace.resolved, name: vm.name)
        let exit = try await runLifecycle { try runtime.kill() }
        print("\(vm.name) stopped: \(exit.reason)")
    }
}

struct PauseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pause", abstract: "Stop a running VM's vCPUs (QMP stop); `sevvm resume` continues it.",
        discussion: "Example:\n  sevvm pause web && sevvm status web")

    @OptionGroup var vm: VMNameArgument
    @OptionGroup var workspace: WorkspaceOptions

    func run() async throws {
        try vm.checkKnown(in: workspace.resolved)
        try await runLifecycle { try await VMRuntime(workspace: workspace.resolved, name: vm.name).pause() }
        print("\(vm.name) paused")
    }
}

struct ResumeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resume", abstract: "Let a paused VM's vCPUs run again (QMP cont).",
        discussion: "Example:\n  sevvm resume web")

    @OptionGroup var vm: VMNameArgument
    @OptionGroup var workspace: WorkspaceOptions

    func run() async throws {
        try vm.checkKnown(in: workspace.resolved)
        try await runLifecycle { try await VMRuntime(workspace: workspace.resolved, name: vm.name).resume() }
        print("\(vm.name) running")
    }
}

struct ResetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reset", abstract: "Reset a VM like its reset button (refused for SEV-ES and SNP guests).",
        discussion: """
            SEV-ES and SNP guests keep their register state encrypted, so they cannot be reset; stop and \
            start them instead.

            Example:
              sevvm reset tiny
            """)

    @OptionGroup var vm: VMNameArgument
    @OptionGroup var workspace: WorkspaceOptions

    func run() async throws {
        try vm.checkKnown(in: workspace.resolved)
        try await runLifecycle { try await VMRuntime(workspace: workspace.resolved, name: vm.name).reset() }
        print("\(vm.name) reset")
    }
}

struct ConsoleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "console", abstract: "Attach to a running VM's serial console (Ctrl-] detaches).",
        discussion: """
            Talks to QEMU's console socket; run/NAME/console.log keeps recording everything meanwhile \
            (see `sevvm logs NAME`). With input from a pipe, the input is sent and the guest's answer \
            shown for a moment.

            Example:
              sevvm console web
            """)

    @OptionGroup var vm: VMNameArgument
    @OptionGroup var workspace: WorkspaceOptions

    func run() async throws {
        try vm.checkKnown(in: workspace.resolved)
        try await runLifecycle { try ConsoleSession.attach(VMRuntime(workspace: workspace.resolved, name: vm.name)) }
    }
}

struct LogsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logs", abstract: "Print a VM's serial console log (or QEMU's own log with --qemu).",
        discussion: """
            Examples:
              sevvm logs web            everything the guest printed on its serial console
              sevvm logs web -f         and keep printing until the VM stops
              sevvm logs web --qemu     QEMU's stderr (start-up errors, KVM errors)
            """)

    @OptionGroup var vm: VMNameArgument
    @Flag(name: [.customShort("f"), .long], help: "Keep printing new lines while the VM runs.")
    var follow = false
    @Flag(help: "Show QEMU's own log (its stderr) instead of the console.")
    var qemu = false
    @OptionGroup var workspace: WorkspaceOptions

    func run() async throws {
        try vm.checkKnown(in: workspace.resolved)
        let runtime = VMRuntime(workspace: workspace.resolved, name: vm.name)
        let path = qemu ? runtime.folder.qemuLog : runtime.folder.consoleLog
        guard FileManager.default.fileExists(atPath: path) else {
            throw fail("\(vm.name) has no log yet (\(path)); start it with `sevvm start \(vm.name)`")
        }
        LogFollower.run(path, runtime: runtime, follow: follow) { line in
            writeLine(line.hasSuffix("\r") ? String(line.dropLast()) : line)
        }
    }
}

struct EventsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "events", abstract: "Print the QMP events QEMU sent for a VM (SHUTDOWN, STOP, RESUME, GUEST_PANICKED, ...).",
        discussion: """
            A per-VM recorder started with the VM keeps every event in run/NAME/events.jsonl, so events \
            that happened while no sevvm command ran are never lost.

            Examples:
              sevvm events web
              sevvm events web -f --json | jq .event
            """)

    @OptionGroup var vm: VMNameArgument
    @Flag(name: [.customShort("f"), .long], help: "Keep printing new events while the VM runs.")
    var follow = false
    @OptionGroup var output: OutputOptions
    @OptionGroup var workspace: WorkspaceOptions

    func run() async throws {
        try vm.checkKnown(in: workspace.resolved)
        let runtime = VMRuntime(workspace: workspace.resolved, name: vm.name)
        guard FileManager.default.fileExists(atPath: runtime.folder.eventLog) else {
            throw fail("\(vm.name) has no event log yet; start it with `sevvm start \(vm.name)`")
        }
        LogFollower.run(runtime.folder.eventLog, runtime: runtime, follow: follow) { line in
            guard let event = VMEvent(line: line) else { return }
            writeLine(output.json ? event.json : event.text)
        }
    }
}

/// Hidden: the per-VM recorder `start` runs detached (events and console; descriptors 3-5 from `start`).
struct RecordEventsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: EventRecorder.subcommand, abstract: "Record a VM's QMP events (started by `sevvm start`).",
        shouldDisplay: false)

    @Argument(help: "The VM's runtime folder.")
    var runtimeFolder: String

    func run() throws {
        let status = EventRecorder.run(folder: runtimeFolder)
        if status != 0 { throw ExitCode(status) }
    }
}
