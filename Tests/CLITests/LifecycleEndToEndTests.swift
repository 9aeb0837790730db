// End to end on real QEMU (TCG) with the tiny Linux guest: start, console, status, pause/resume, events, stop, crash, concurrency.
import Foundation
import Support
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@Suite(
    .serialized,
    .enabled(if: CLIEnvironment.canRunVMs, "needs the built sevvm, qemu-system-x86_64 and the tiny guest (skipped loudly when missing)"))
struct LifecycleEndToEndTests {
    /// One booted guest carries the whole lifecycle (a TCG boot takes ~11 s).
    @Test func wholeLifecycleOfARealGuest() throws {
        let workspace = try TestWorkspace()
        let run = workspace.runtimeFolder("tiny")
        try workspace.createTiny("tiny")

        let started = try workspace.sevvm("start", "tiny", "--accel", "tcg")
        try #require(started.succeeded, "start failed: \(started.stderrText)")
        #expect(started.stdoutText.contains("tiny started"))
        #expect(workspace.qemuPIDs("tiny").count == 1)
        #expect(workspace.recorderPIDs().count == 1)

        #expect(workspace.waitFor("sevvm-tiny-guest: ready", in: run + "/console.log"), "the guest never reported ready")
        #expect(try workspace.sevvm("logs", "tiny").stdoutText.contains("sevvm-tiny-guest: ready"))
        let running = try workspace.statusJSON("tiny")
        #expect(running["state"] as? String == "running")
        #expect(running["pid"] as? Int == workspace.qemuPIDs("tiny").first.map(Int.init))
        let state = try String(contentsOfFile: run + "/state.json", encoding: .utf8)
        #expect(state.contains("-daemonize") && state.contains("qemuVersion"))

        // Pause and resume, seen by status and by the event recorder.
        #expect(try workspace.sevvm("pause", "tiny").succeeded)
        #expect(try workspace.state("tiny") == "paused")
        #expect(try workspace.sevvm("pause", "tiny").status == 4)  // already paused: wrong state
        #expect(try workspace.sevvm("resume", "tiny").succeeded)
        #expect(try workspace.state("tiny") == "running")
        let events = try workspace.sevvm("events", "tiny", "--json").stdoutText
        #expect(events.contains("\"STOP\"") && events.contains("\"RESUME\""))

        // An attached console and an event follower see the shutdown live, and end with the VM.
        let console = try workspace.background(["console", "tiny"])
        let follower = try workspace.background(["events", "tiny", "-f"])
        defer {
            console.terminate()
            follower.terminate()
        }
        usleep(500_000)  // let both attach before the power button is pressed

        // Graceful stop: the guest's init sees the power button and powers off.
        let stopped = try workspace.sevvm("stop", "tiny", "--timeout", "60")
        #expect(stopped.succeeded, "stop failed: \(stopped.stderrText)")
        #expect(try workspace.state("tiny") == "stopped")
        #expect(workspace.qemuPIDs("tiny").isEmpty)
        #expect(try workspace.sevvm("events", "tiny").stdoutText.contains("SHUTDOWN"))
        #expect(workspace.waitFor("power button pressed", in: run + "/console.log", timeout: 1))
        #expect(workspace.recorderPIDs().isEmpty)
        #expect(!FileManager.default.fileExists(atPath: run + "/qmp.sock"))
        #expect(console.finish(within: 10).contains("power button pressed"), "the console session missed the guest's output")
        let followed = follower.finish(within: 10)
        #expect(followed.contains("POWERDOWN") && followed.contains("SHUTDOWN"), "events -f printed: \(followed)")

        // Start again, then SIGKILL QEMU behind sevvm's back: crashed, stale files cleaned, recoverable.
        try #require(try workspace.sevvm("start", "tiny", "--accel", "tcg").succeeded)
        let pid = try #require(workspace.qemuPIDs("tiny").first)
        ProcessList.killAndWait(pid)
        #expect(FileManager.default.fileExists(atPath: run + "/qemu.pid"))  // stale
        let crashed = try workspace.statusJSON("tiny")
        #expect(crashed["state"] as? String == "crashed")
        #expect((crashed["reason"] as? String)?.contains("killed") == true)
        #expect(!FileManager.default.fileExists(atPath: run + "/qemu.pid"))
        #expect(!FileManager.default.fileExists(atPath: run + "/qmp.sock"))
        #expect(try workspace.sevvm("stop", "tiny").status == 4)

        let recovered = try workspace.sevvm("start", "tiny", "--accel", "tcg")
        #expect(recovered.succeeded, "restart after a crash failed: \(recovered.stderrText)")
        #expect(["running", "starting"].contains(try workspace.state("tiny")))
        #expect(try workspace.sevvm("stop", "tiny", "--force").succeeded)
        #expect(try workspace.state("tiny") == "stopped")
        #expect(workspace.qemuPIDs("tiny").isEmpty)
    }

    @Test func fiveConcurrentStartsGiveOneQEMU() throws {
        let workspace = try TestWorkspace()
        try workspace.createTiny("race")
        let results = ResultBox()
        DispatchQueue.concurrentPerform(iterations: 5) { _ in
            results.append(try? workspace.sevvm("start", "race", "--accel", "tcg"))
        }
        let all = results.values
        #expect(all.count == 5)
        #expect(all.filter(\.succeeded).count == 1, "\(all.map(\.stderrText))")
        let refused = all.filter { !$0.succeeded }
        #expect(refused.allSatisfy { $0.status == 4 && $0.stderrText.contains("already running") }, "\(refused.map(\.stderrText))")
        #expect(workspace.qemuPIDs("race").count == 1)
        #expect(workspace.recorderPIDs().count == 1)
        #expect(try workspace.sevvm("kill", "race").succeeded)
        #expect(workspace.qemuPIDs("race").isEmpty)
        #expect(try workspace.state("race") == "stopped")
    }

    @Test func workspaceDeeperThanTheSocketLimit() throws {
        let workspace = try TestWorkspace(deepSuffix: String(repeating: "deep-", count: 14) + "/" + String(repeating: "x", count: 40))
        #expect((workspace.runtimeFolder("deep") + "/console.sock").utf8.count > 107)
        try workspace.createTiny("deep")
        let started = try workspace.sevvm("start", "deep", "--accel", "tcg")
        try #require(started.succeeded, "start failed: \(started.stderrText)")
        // status talks QMP over the deep socket path.
        let status = try workspace.statusJSON("deep")
        #expect(["running", "starting"].contains(status["state"] as? String))
        #expect(status["qemuStatus"] as? String != nil)
        #expect(try workspace.sevvm("pause", "deep").succeeded)
        #expect(try workspace.sevvm("stop", "deep", "--force").succeeded)
        #expect(try workspace.state("deep") == "stopped")
        #expect(try workspace.sevvm("events", "deep").stdoutText.contains("SHUTDOWN"))
    }

    @Test func dryRunPrintsTheArgvAndStartsNothing() throws {
        let workspace = try TestWorkspace()
        try workspace.createTiny("plan")
        let result = try workspace.sevvm("start", "plan", "--accel", "tcg", "--dry-run")
        #expect(result.succeeded, "\(result.stderrText)")
        let lines = result.stdoutText.split(separator: "\n")
        #expect(lines.contains { $0.contains("-daemonize") })
        #expect(lines.contains { $0.contains("-qmp unix:qmp.sock,server=on,wait=off") })
        #expect(lines.contains { $0.contains("-append console=ttyS0") })
        #expect(workspace.qemuPIDs("plan").isEmpty)
        #expect(!FileManager.default.fileExists(atPath: workspace.runtimeFolder("plan") + "/qemu.pid"))
        #expect(try workspace.state("plan") == "stopped")
    }

    @Test func commandsOnAStoppedVMSayItIsNotRunning() throws {
        let workspace = try TestWorkspace()
        try workspace.createTiny("idle")
        for command in ["stop", "kill", "pause", "resume", "console"] {
            let result = try workspace.sevvm(command, "idle")
            #expect(result.status == 4, "\(command): \(result.stderrText)")
            #expect(result.stderrText.contains("not running"), "\(command): \(result.stderrText)")
        }
    }

    /// A typo is not a stopped VM: every command that takes a VM name says no such VM is defined.
    @Test func commandsOnAnUndefinedVMSaySo() throws {
        let workspace = try TestWorkspace()
        for arguments in [["status"], ["stop"], ["kill"], ["logs"], ["events"], ["qmp"]] {
            let result = try workspace.run(arguments + ["nosuchvm"] + (arguments == ["qmp"] ? ["query-status"] : []))
            #expect(result.status == 1, "\(arguments): \(result.stderrText)")
            #expect(result.stderrText.contains("no VM named 'nosuchvm'"), "\(arguments): \(result.stderrText)")
        }
    }
}

@Suite(.enabled(if: CLIEnvironment.canRunVMs, "needs the built sevvm, qemu-system-x86_64 and the tiny guest"))
struct SNPStartRefusalTests {
    /// This host's KVM has no SNP: QEMU's own check fails, sevvm explains it and leaves nothing behind.
    @Test func snpStartFailsWithTheTranslatedKVMError() throws {
        let workspace = try TestWorkspace()
        // This host reports no C-bit position (no SEV): give Genoa's, as a user of such a host would.
        try workspace.createTiny("snp", mode: "snp", extra: ["--cbitpos", "51", "--reduced-phys-bits", "1"])
        let result = try workspace.sevvm("start", "snp", "--snp", "--accel", "kvm")
        #expect(result.status == 1)
        #expect(result.stderrText.contains("vm-type SEV-SNP not supported by KVM"), "\(result.stderrText)")
        #expect(result.stderrText.contains("SEV-SNP is not enabled in this host's KVM"))
        #expect(result.stderrText.contains("sevvm caps"))
        #expect(workspace.qemuPIDs("snp").isEmpty)
        #expect(workspace.recorderPIDs().isEmpty)
        #expect(!FileManager.default.fileExists(atPath: workspace.runtimeFolder("snp")))
        #expect(try workspace.state("snp") == "stopped")
    }
}

/// Results gathered from concurrent work.
private final class ResultBox: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [ProcessResult] = []
    func append(_ item: ProcessResult?) { if let item { lock.withLock { items.append(item) } } }
    var values: [ProcessResult] { lock.withLock { items } }
}
