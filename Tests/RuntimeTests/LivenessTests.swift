// Liveness, the event recorder and crash classification against a real (machine-less, paused) QEMU.
import Foundation
import QMP
import Support
import Testing

@testable import Runtime

#if canImport(Glibc)
    import Glibc
#endif

@Suite(.enabled(if: QEMUForTests.binary != nil, "needs qemu-system-x86_64 (skipped loudly when missing)"))
struct LivenessTests {
    /// Starts `qemu -machine none -S -daemonize` the way `start` does (runtime folder as working
    /// directory, relative sockets) and returns its PID.
    private func startBareQEMU(_ runtime: VMRuntime) throws -> pid_t {
        let folder = runtime.folder
        try folder.prepareForStart()
        let argv = [
            try #require(QEMUForTests.binary), "-machine", "none", "-name", "guest=\(runtime.name)", "-S", "-daemonize",
            "-pidfile", folder.pidfile, "-D", folder.qemuLog, "-display", "none",
            "-qmp", "unix:qmp.sock,server=on,wait=off", "-qmp", "unix:events.sock,server=on,wait=off",
            "-chardev", "socket,id=console0,path=serial.sock,server=on,wait=off",
        ]
        var launch = SpawnRequest(argv)
        launch.workingDirectory = folder.path
        launch.standardError = .file(folder.qemuLog, append: true)
        #expect(Spawn.waitForExit(try ProcessControl.spawn(launch)) == 0, "QEMU failed: \(VMRuntime.readText(folder.qemuLog))")
        var record = RuntimeRecord(
            name: runtime.name, argv: argv, qemuPath: argv[0], qemuVersion: "10.0.2", firmwarePath: nil, mode: .none,
            accel: "tcg", startedAt: Date(), warnings: [])
        let pid = try #require(ProcessControl.liveQEMU(pidfile: folder.pidfile, name: runtime.name))
        record.pid = pid
        try record.save(folder.stateFile)
        return pid
    }

    @Test func pidfileLockAndCmdlineIdentifyTheVMsQEMU() async throws {
        let workspace = try TemporaryFolder()
        let runtime = VMRuntime(workspace: Workspace(root: workspace.path), name: "alive")
        let pid = try startBareQEMU(runtime)
        defer { QEMUForTests.killAndWait(pid) }
        #expect(ProcessControl.liveQEMU(pidfile: runtime.folder.pidfile, name: "alive") == pid)
        // The same pidfile never vouches for another VM's name.
        #expect(ProcessControl.liveQEMU(pidfile: runtime.folder.pidfile, name: "other") == nil)
        #expect(runtime.isRunning)
        let status = runtime.status()
        #expect(status.state == .starting)  // -S: QEMU is in prelaunch until `cont`
        #expect(status.qemuStatus == "prelaunch")
        #expect(status.pid == pid)
    }

    @Test func sigkilledQEMUIsReportedCrashedAndItsStaleFilesRemoved() async throws {
        let workspace = try TemporaryFolder()
        let runtime = VMRuntime(workspace: Workspace(root: workspace.path), name: "victim")
        let pid = try startBareQEMU(runtime)
        QEMUForTests.killAndWait(pid)
        // The pidfile and sockets survive a SIGKILL; the lock on the pidfile does not.
        #expect(FileManager.default.fileExists(atPath: runtime.folder.pidfile))
        #expect(ProcessControl.liveQEMU(pidfile: runtime.folder.pidfile, name: "victim") == nil)
        let status = runtime.status()
        #expect(status.state == .crashed)
        #expect(status.reason?.contains("ended without shutting down") == true)
        #expect(!FileManager.default.fileExists(atPath: runtime.folder.pidfile))
        #expect(!FileManager.default.fileExists(atPath: runtime.folder.controlSocket))
        // The verdict is kept until the next start.
        #expect(RuntimeRecord.load(runtime.folder.stateFile)?.exit?.kind == .crashed)
        #expect(runtime.status().state == .crashed)
    }

    @Test func recorderKeepsEveryEventUntilQEMUExits() async throws {
        let workspace = try TemporaryFolder()
        let runtime = VMRuntime(workspace: Workspace(root: workspace.path), name: "events")
        let pid = try startBareQEMU(runtime)
        defer { QEMUForTests.killAndWait(pid) }
        let handles = try EventRecorder.open(folder: runtime.folder, timeout: 5)
        let path = runtime.folder.path
        let recorder = Task.detached {
            EventRecorder.run(folder: path, events: handles.events, serial: handles.serial, listener: handles.listener)
        }

        let monitor = try await QMPClient.connect(socketPath: runtime.folder.controlSocket)
        _ = try await monitor.execute("cont")
        _ = try await monitor.execute("stop")
        _ = try? await monitor.execute("quit")
        monitor.close()
        #expect(await recorder.value == 0)  // returns at QEMU's end of stream

        let names = EventLog.read(runtime.folder.eventLog).map(\.name)
        // The recorder removes its console socket when QEMU is gone.
        #expect(!FileManager.default.fileExists(atPath: runtime.folder.consoleSocket))
        #expect(names == ["RESUME", "STOP", "SHUTDOWN"])
        let exit = runtime.classifyExit(try #require(RuntimeRecord.load(runtime.folder.stateFile)))
        #expect(exit.kind == .stopped)
        #expect(exit.reason == "QEMU was told to quit")
    }

    @Test func deepRuntimeFolderStillReachesTheMonitor() async throws {
        let workspace = try TemporaryFolder()
        let deep = workspace.path + "/" + String(repeating: "d", count: 60) + "/" + String(repeating: "e", count: 60)
        let runtime = VMRuntime(workspace: Workspace(root: deep), name: "deep")
        #expect(runtime.folder.controlSocket.utf8.count > 107)
        let pid = try startBareQEMU(runtime)
        defer { QEMUForTests.killAndWait(pid) }
        let handles = try EventRecorder.open(folder: runtime.folder, timeout: 5)
        handles.closeAll()
        #expect(runtime.status().qemuStatus == "prelaunch")
    }
}
