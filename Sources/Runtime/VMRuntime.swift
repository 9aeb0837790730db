// One VM's lifecycle: start (QEMU -daemonize, event recorder, QMP checks, cont), status, stop, kill, pause, resume, reset.
import Definitions
import FoundationEssentials
import Launch
import QMP
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// Controls the QEMU process of one VM. Daemonless: QEMU is the long-lived process; every command
/// finds it again through the runtime folder (pidfile lock + /proc), under the per-VM lock.
public struct VMRuntime: Sendable {
    public let workspace: Workspace
    public let name: String
    public let folder: RuntimeFolder

    public init(workspace: Workspace, name: String) {
        self.workspace = workspace
        self.name = name
        folder = RuntimeFolder(workspace: workspace, name: name)
    }

    /// Throws `DefinitionError.notFound` unless the VM has a definition or a runtime folder (a VM
    /// whose definition was deleted by hand while it ran can still be stopped), so a typo is not
    /// reported as "stopped".
    public func checkKnown() throws {
        let files = FileManager.default
        guard files.fileExists(atPath: workspace.definitionPath(for: name)) || files.fileExists(atPath: folder.path) else {
            throw DefinitionError.notFound(name: name, path: workspace.definitionPath(for: name))
        }
    }

    /// How long commands wait for another sevvm command working on the same VM.
    public static let lockTimeout: Double = 60

    // MARK: - Start

    /// Starts the VM from `plan`: QEMU with `-S -daemonize` (its exit status and stderr are the
    /// verdict), the event recorder on the second QMP socket, `query-sev` for SEV guests, then `cont`.
    /// `recorderExecutable` is the sevvm binary that runs `_record-events`.
    @discardableResult
    public func start(plan: LaunchPlan, recorderExecutable: String) async throws -> RuntimeRecord {
        try AtomicFile.makeDirectory(workspace.runDirectory, permissions: 0o700)
        let lock = try FileLock.acquire(folder.lockPath, timeout: Self.lockTimeout)
        defer { lock.unlock() }
        if let pid = ProcessControl.liveQEMU(pidfile: folder.pidfile, name: name) {
            throw RuntimeError.alreadyRunning(name: name, pid: pid)
        }
        try ensureVarsCopy(plan)
        try folder.prepareForStart()
        let argv = QEMUCommandLine.argv(plan: plan, name: name, folder: folder)
        var record = RuntimeRecord(
            name: name, argv: argv, qemuPath: plan.qemu.path, qemuVersion: plan.qemu.version.description,
            firmwarePath: plan.firmware?.code, mode: plan.mode, accel: plan.accel, startedAt: Date(), warnings: plan.warnings)
        if plan.mode.isEncrypted {
            // Recorded before QEMU runs, so `status` and a verifier see what this launch must measure.
            do {
                let definition = try plan.definition ?? DefinitionStore(workspace: workspace).load(name)
                record.expectedDigest = try LaunchMeasurement.expectedDigest(for: definition, plan: plan, workspace: workspace)
            } catch {
                record.expectedDigestNote = "\(error)"
            }
        }
        try record.save(folder.stateFile)

        // QEMU's parent returns once the machine (SEV context included) is initialised or has failed.
        var launch = SpawnRequest(argv)
        launch.workingDirectory = folder.path
        launch.standardOutput = .file(folder.qemuLog, append: true)
        launch.standardError = .file(folder.qemuLog, append: true)
        let status = Spawn.waitForExit(try ProcessControl.spawn(launch))
        guard status == 0, let pid = ProcessControl.liveQEMU(pidfile: folder.pidfile, name: name) else {
            let stderr = Self.readText(folder.qemuLog)
            abandon(pid: ProcessControl.liveQEMU(pidfile: folder.pidfile, name: name), recorder: nil)
            throw RuntimeError.qemuStartFailed(
                name: name, status: status, stderr: stderr, advice: StartupAdvice.advice(forQEMUError: stderr),
                log: folder.qemuLog)
        }
        record.pid = pid
        var recorder: pid_t?
        do {
            // QEMU creates its sockets with the process umask: keep them private like the folder.
            for socket in [folder.controlSocket, folder.eventSocket, folder.serialSocket] { chmod(socket, 0o600) }
            let handles = try EventRecorder.open(folder: folder, timeout: 5)
            recorder = try EventRecorder.spawn(executable: recorderExecutable, folder: folder, handles: handles)
            record.recorderPid = recorder
            try record.save(folder.stateFile)
            record.launchMeasurement = try await withMonitor { monitor -> String? in
                if plan.mode.isEncrypted { try await checkSEV(monitor, mode: plan.mode) }
                // SEV and SEV-ES guests: the PSP's launch measurement exists between launch and `cont`.
                var measurement: String?
                if plan.mode == .sev || plan.mode == .sevES {
                    measurement = try? await monitor.execute("query-sev-launch-measure")["data"]?.string
                }
                _ = try await monitor.execute("cont")
                return measurement
            }
            if record.launchMeasurement != nil { try record.save(folder.stateFile) }
        } catch {
            abandon(pid: pid, recorder: recorder)
            throw error
        }
        return record
    }

    /// `query-sev` must report the mode we launched before the guest runs.
    private func checkSEV(_ monitor: QMPClient, mode: GuestMode) async throws {
        let reply = try await monitor.execute("query-sev")
        let enabled = reply["enabled"]?.bool ?? false
        let type = reply["sev-type"]?.string ?? (enabled ? "sev" : "none")
        let expected = mode == .snp ? "sev-snp" : "sev"
        guard enabled, type == expected else {
            throw RuntimeError.sevCheckFailed(
                name: name, expected: "\(mode.displayName) (sev-type \(expected))",
                reported: enabled ? "sev-type \(type)" : "SEV not enabled")
        }
    }

    /// After a failed start: no process and no runtime folder are left behind.
    private func abandon(pid: pid_t?, recorder: pid_t?) {
        if let pid {
            Glibc.kill(pid, SIGKILL)
            _ = ProcessControl.wait(timeout: 5) { ProcessControl.exists(pid) }
        }
        if let recorder {
            Glibc.kill(recorder, SIGKILL)
            _ = Spawn.waitForExit(recorder)
        }
        folder.remove()
    }

    // MARK: - Status

    /// The VM's state. Never trusts a stale pidfile: a QEMU that is gone is classified (stopped after a
    /// SHUTDOWN event, crashed otherwise), its stale pidfile and sockets removed, and the verdict kept
    /// in state.json until the next start. `queryMonitor: false` is the quick form: no QMP round
    /// trip and no console-log scan, for callers that only need the state.
    /// The VM's state. Synchronous: its QMP questions go through QMPQuery on this thread, so a
    /// one-shot `sevvm status` starts no threads at all.
    public func status(queryMonitor: Bool = true) -> VMStatus {
        let record = RuntimeRecord.load(folder.stateFile)
        var status = VMStatus(
            name: name, state: .stopped, pid: nil, mode: record?.mode, accel: record?.accel,
            qemuVersion: record?.qemuVersion, firmware: record?.firmwarePath, startedAt: record?.startedAt,
            guestReport: [], runtimeFolder: folder.path)
        guard let record else {
            if FileLock.isHeld(folder.lockPath), folder.exists { status.state = .starting }
            return status
        }
        // The console log can be long; the quick form (list, error messages) only needs the state.
        if queryMonitor { status.guestReport = VMStatus.guestReport(consoleLog: folder.consoleLog) }
        status.expectedDigest = record.expectedDigest
        status.expectedDigestNote = record.expectedDigestNote
        status.launchMeasurement = record.launchMeasurement
        if let pid = ProcessControl.liveQEMU(pidfile: folder.pidfile, name: name) {
            status.pid = pid
            status.consoleSocket = folder.consoleSocket
            guard queryMonitor else {
                status.state = .running
                return status
            }
            do {
                try QMPQuery.withSession(socketPath: folder.controlSocket, timeout: .seconds(2)) { monitor in
                    let reply = try monitor.execute("query-status")
                    let qemuStatus = reply["status"]?.string ?? "unknown"
                    status.qemuStatus = qemuStatus
                    status.state = VMStatus.state(forQEMUStatus: qemuStatus)
                    if status.state == .crashed { status.reason = "QEMU reports \(qemuStatus)" }
                    if record.mode.isEncrypted, let sev = try? monitor.execute("query-sev") {
                        status.sev = SEVStatus(
                            enabled: sev["enabled"]?.bool ?? false, type: sev["sev-type"]?.string, state: sev["state"]?.string,
                            apiVersion: sev["api-major"]?.int.map { major in "\(major).\(sev["api-minor"]?.int ?? 0)" },
                            policy: (sev["snp-policy"]?.int ?? sev["policy"]?.int).map { "0x" + String($0, radix: 16) })
                    }
                }
            } catch {
                // Another client holds the monitor (start, stop, qmp): the process is alive, the rest unknown.
                status.state = FileLock.isHeld(folder.lockPath) && record.recorderPid == nil ? .starting : .running
                status.reason = "the QMP monitor did not answer (\(error)); state from the process only"
            }
            return status
        }
        if record.pid == nil, record.exit == nil, FileLock.isHeld(folder.lockPath) {
            status.state = .starting
            return status
        }
        let exit = record.exit ?? settle(record)
        status.state = exit.kind == .stopped ? .stopped : .crashed
        status.reason = exit.reason
        return status
    }

    /// Decides how a run whose QEMU is gone ended, removes its stale live files and records the verdict
    /// (when no other command holds the VM's lock; otherwise that command records it).
    private func settle(_ record: RuntimeRecord) -> ExitRecord {
        waitForRecorder(record)
        let exit = classifyExit(record)
        if let lock = try? FileLock.acquire(folder.lockPath, timeout: 0) {
            defer { lock.unlock() }
            // Re-check under the lock: a start may have replaced the run meanwhile.
            if ProcessControl.liveQEMU(pidfile: folder.pidfile, name: name) == nil,
                var current = RuntimeRecord.load(folder.stateFile), current.startedAt == record.startedAt, current.exit == nil
            {
                folder.removeLiveFiles()
                current.exit = exit
                try? current.save(folder.stateFile)
            }
        }
        return exit
    }

    /// The recorder writes QEMU's last events right after QEMU exits: wait for it before reading them.
    private func waitForRecorder(_ record: RuntimeRecord) {
        guard let recorder = record.recorderPid else { return }
        _ = ProcessControl.wait(timeout: 3) {
            ProcessControl.exists(recorder) && ProcessControl.isRecorder(recorder, folder: folder.path)
        }
    }

    func classifyExit(_ record: RuntimeRecord) -> ExitRecord {
        let events = EventLog.read(folder.eventLog)
        if let panic = events.last(where: { $0.name == "GUEST_PANICKED" }) {
            return ExitRecord(kind: .crashed, reason: "the guest kernel panicked (\(panic.text))", at: panic.timestamp)
        }
        if let shutdown = events.last(where: { $0.name == "SHUTDOWN" }) {
            let why: String
            switch shutdown.reason {
            case "guest-shutdown": why = "the guest powered off"
            case "host-qmp-quit": why = "QEMU was told to quit"
            case "host-signal": why = "QEMU was ended by a signal (e.g. SIGTERM)"
            case "host-qmp-system-reset", "guest-reset": why = "the guest reset and -no-reboot ended QEMU"
            case let other?: why = "shutdown (\(other))"
            case nil: why = "shutdown"
            }
            return ExitRecord(kind: .stopped, reason: why, at: shutdown.timestamp)
        }
        let lastLog = Self.readText(folder.qemuLog).split(separator: "\n").last.map(String.init)
        let pid = record.pid.map { " (pid \($0))" } ?? ""
        var reason = "QEMU\(pid) ended without shutting down: it was killed (e.g. SIGKILL) or crashed"
        if let lastLog, !lastLog.isEmpty { reason += "; its last words: \(lastLog)" }
        if let last = events.last { reason += "; last event: \(last.name)" }
        return ExitRecord(kind: .crashed, reason: reason, at: Date())
    }

    // MARK: - Stop, kill

    /// Presses the ACPI power button, waits up to `timeout` seconds for the guest to power off, then
    /// tells QEMU to quit (`force` skips the wait). Returns how the run ended.
    @discardableResult
    public func stop(timeout: Double, force: Bool) async throws -> ExitRecord {
        let lock = try lockRunning()
        defer { lock.unlock() }
        guard let pid = ProcessControl.liveQEMU(pidfile: folder.pidfile, name: name) else {
            throw RuntimeError.notRunning(name: name, state: status(queryMonitor: false).state.rawValue)
        }
        var forced: String?
        if !force {
            try await withMonitor { monitor in _ = try await monitor.execute("system_powerdown") }
        }
        if force || !ProcessControl.wait(timeout: timeout, while: { ProcessControl.exists(pid) }) {
            // The monitor goes away with QEMU: a disconnect here means the quit worked.
            try? await withMonitor { monitor in _ = try? await monitor.execute("quit") }
            if !ProcessControl.wait(timeout: 10, while: { ProcessControl.exists(pid) }) {
                Glibc.kill(pid, SIGKILL)
                _ = ProcessControl.wait(timeout: 5) { ProcessControl.exists(pid) }
                forced = "QEMU did not quit within 10s and was killed"
            }
        }
        return finish(reason: forced)
    }

    /// Ends QEMU at once with SIGKILL (no guest shutdown).
    @discardableResult
    public func kill() throws -> ExitRecord {
        let lock = try lockRunning()
        defer { lock.unlock() }
        guard let pid = ProcessControl.liveQEMU(pidfile: folder.pidfile, name: name) else {
            throw RuntimeError.notRunning(name: name, state: "not running")
        }
        Glibc.kill(pid, SIGKILL)
        _ = ProcessControl.wait(timeout: 10) { ProcessControl.exists(pid) }
        return finish(reason: "killed with `sevvm kill`")
    }

    /// Records the end of a run the caller ended on purpose (under the lock) and removes live files.
    private func finish(reason: String?) -> ExitRecord {
        guard var record = RuntimeRecord.load(folder.stateFile) else {
            folder.removeLiveFiles()
            return ExitRecord(kind: .stopped, reason: reason ?? "stopped", at: Date())
        }
        waitForRecorder(record)
        var exit = classifyExit(record)
        if let reason { exit = ExitRecord(kind: .stopped, reason: reason, at: Date()) }
        record.exit = exit
        folder.removeLiveFiles()
        try? record.save(folder.stateFile)
        return exit
    }

    // MARK: - Pause, resume, reset

    public func pause() async throws {
        try await control(needs: [.running], description: "running") { monitor in _ = try await monitor.execute("stop") }
    }

    public func resume() async throws {
        try await control(needs: [.paused, .starting], description: "paused") { monitor in _ = try await monitor.execute("cont") }
    }

    /// Resets the guest; refused for SEV-ES and SNP, whose encrypted register state cannot be reset.
    public func reset() async throws {
        if let mode = RuntimeRecord.load(folder.stateFile)?.mode, mode.encryptsState {
            throw RuntimeError.resetRefused(name: name, mode: mode.displayName)
        }
        try await control(needs: [.running, .paused], description: "running or paused") { monitor in
            _ = try await monitor.execute("system_reset")
        }
    }

    /// Runs `body` on the monitor under the VM's lock when QEMU's state is one of `needs`.
    private func control(needs: Set<VMState>, description: String, _ body: (QMPClient) async throws -> Void) async throws {
        let lock = try lockRunning()
        defer { lock.unlock() }
        guard ProcessControl.liveQEMU(pidfile: folder.pidfile, name: name) != nil else {
            throw RuntimeError.notRunning(name: name, state: status(queryMonitor: false).state.rawValue)
        }
        try await withMonitor { monitor in
            let current = try await monitor.execute("query-status")["status"]?.string ?? "unknown"
            let state = VMStatus.state(forQEMUStatus: current)
            guard needs.contains(state) else {
                throw RuntimeError.wrongState(name: name, state: state.rawValue, needed: description)
            }
            try await body(monitor)
        }
    }

    /// The VM's lock for a command that needs QEMU running: a VM that never ran has no run/ folder to
    /// lock, and is simply not running.
    private func lockRunning() throws -> FileLock {
        guard FileManager.default.fileExists(atPath: workspace.runDirectory) else {
            throw RuntimeError.notRunning(name: name, state: VMState.stopped.rawValue)
        }
        return try FileLock.acquire(folder.lockPath, timeout: Self.lockTimeout)
    }

    // MARK: - Monitor access

    /// The control QMP socket of the running VM (for `sevvm qmp NAME`), or `notRunning`.
    public func controlSocket() throws -> String {
        guard ProcessControl.liveQEMU(pidfile: folder.pidfile, name: name) != nil else {
            throw RuntimeError.notRunning(name: name, state: "not running")
        }
        return folder.controlSocket
    }

    /// True while this VM's QEMU runs.
    public var isRunning: Bool { ProcessControl.liveQEMU(pidfile: folder.pidfile, name: name) != nil }

    /// The recorder's PID for the current run, when it still runs.
    public var recorderPID: pid_t? {
        guard let pid = RuntimeRecord.load(folder.stateFile)?.recorderPid,
            ProcessControl.exists(pid), ProcessControl.isRecorder(pid, folder: folder.path)
        else { return nil }
        return pid
    }

    /// Opens the control monitor, runs `body`, closes it. One monitor serves one client at a time.
    func withMonitor<T>(timeout: Duration = .seconds(5), _ body: (QMPClient) async throws -> T) async throws -> T {
        // The whole conversation runs on the connection's own thread (no second wake-up per reply).
        var connected = false
        do {
            return try await QMPClient.withSession(socketPath: folder.controlSocket, timeout: timeout) { monitor in
                connected = true
                return try await body(monitor)
            }
        } catch  where !connected {
            throw RuntimeError.monitorUnavailable(name: name, socket: folder.controlSocket, reason: "\(error)")
        }
    }

    static func readText(_ path: String) -> String {
        FileManager.default.contents(atPath: path).map { String(decoding: $0, as: UTF8.self) } ?? ""
    }
}
