// Status pieces that need no QEMU: run-state mapping, the guest's console report, event lines, folder layout.
import Foundation
import QMP
import Support
import Testing

@testable import Runtime

@Suite struct VMStatusMappingTests {
    @Test(arguments: [
        ("running", VMState.running), ("prelaunch", .starting), ("paused", .paused), ("suspended", .paused),
        ("shutdown", .shutdown), ("internal-error", .crashed), ("guest-panicked", .crashed), ("inmigrate", .starting),
    ])
    func qemuRunStates(qemu: String, state: VMState) {
        #expect(VMStatus.state(forQEMUStatus: qemu) == state)
    }

    @Test func guestReportFindsMemoryEncryptionLines() throws {
        let folder = try TemporaryFolder()
        let log = folder.path + "/console.log"
        try """
        [    0.000000] Linux version 6.11.0-snp-guest
        [    0.301000] Memory Encryption Features active: SEV SEV-ES SEV-SNP\r
        [    0.302000] SEV: Status: SEV SEV-ES SEV-SNP
        sevvm-tiny-guest: dmesg: [    0.301000] Memory Encryption Features active: SEV SEV-ES SEV-SNP
        sevvm-tiny-guest: ready
        """.write(toFile: log, atomically: true, encoding: .utf8)
        let report = VMStatus.guestReport(consoleLog: log)
        #expect(report == ["Memory Encryption Features active: SEV SEV-ES SEV-SNP", "SEV: Status: SEV SEV-ES SEV-SNP"])
        #expect(VMStatus.guestReport(consoleLog: folder.path + "/missing.log").isEmpty)
    }

    @Test func guestReportSearchesAChattyLogInOrderAndStopsAt4MiB() throws {
        let folder = try TemporaryFolder()
        let log = folder.path + "/console.log"
        let chatter = String(repeating: "[    1.000000] systemd[1]: Starting something or other...\r\n", count: 20_000)
        let text =
            chatter + "[    0.2] SEV: Status: SEV SEV-ES\r\n" + chatter
            + "[    0.3] Memory Encryption Features active: SEV SEV-ES\n" + chatter + chatter
            + "[    9.9] SEV-SNP: beyond the first 4 MiB\n"
        #expect(text.utf8.count > 4 << 20)
        try text.write(toFile: log, atomically: true, encoding: .utf8)
        // Lines come in log order, whichever marker found them.
        #expect(
            VMStatus.guestReport(consoleLog: log) == ["SEV: Status: SEV SEV-ES", "Memory Encryption Features active: SEV SEV-ES"])
    }

    @Test func jsonAlwaysHasState() throws {
        let status = VMStatus(name: "web", state: .stopped, guestReport: [], runtimeFolder: "/w/run/web")
        let data = try JSONEncoder().encode(status)
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(object["state"] as? String == "stopped")
        #expect(object["name"] as? String == "web")
    }
}

@Suite struct EventLogTests {
    let shutdown =
        #"{"timestamp": {"seconds": 1795979934, "microseconds": 448109}, "event": "SHUTDOWN", "data": {"guest": true, "reason": "guest-shutdown"}}"#

    @Test func parsesARecordedEvent() throws {
        let event = try #require(VMEvent(line: shutdown))
        #expect(event.name == "SHUTDOWN")
        #expect(event.reason == "guest-shutdown")
        #expect(abs(event.timestamp.timeIntervalSince1970 - 1_795_979_934.448109) < 0.001)
        #expect(event.text.hasSuffix(#"SHUTDOWN {"guest":true,"reason":"guest-shutdown"}"#))
        #expect(VMEvent(line: #"{"return": {}}"#) == nil)
        #expect(VMEvent(line: "not json") == nil)
    }

    @Test func readLinesNeverReturnsAHalfWrittenLine() throws {
        let folder = try TemporaryFolder()
        let path = folder.path + "/events.jsonl"
        try (shutdown + "\n" + #"{"event": "RES"#).write(toFile: path, atomically: true, encoding: .utf8)
        let first = EventLog.readLines(path, from: 0)
        #expect(first.lines == [shutdown])
        #expect(first.next == UInt64(shutdown.utf8.count + 1))
        let again = EventLog.readLines(path, from: first.next)
        #expect(again.lines.isEmpty)
        #expect(again.next == first.next)
        #expect(EventLog.read(path).map(\.name) == ["SHUTDOWN"])
    }
}

@Suite struct RuntimeFolderTests {
    @Test func freshRunKeepsPreviousLogsAndUsesPrivateModes() throws {
        let workspace = try TemporaryFolder()
        let folder = RuntimeFolder(workspace: Workspace(root: workspace.path), name: "web")
        #expect(folder.lockPath == workspace.path + "/run/web.lock")
        try folder.create()
        try "old console".write(toFile: folder.consoleLog, atomically: true, encoding: .utf8)
        try "stale".write(toFile: folder.pidfile, atomically: true, encoding: .utf8)
        try folder.prepareForStart()
        #expect(try String(contentsOfFile: folder.consoleLog + ".previous", encoding: .utf8) == "old console")
        #expect(try String(contentsOfFile: folder.consoleLog, encoding: .utf8).isEmpty)
        #expect(!FileManager.default.fileExists(atPath: folder.pidfile))
        #expect(try mode(of: folder.path) == 0o700)
        #expect(try mode(of: workspace.path + "/run") == 0o700)
        #expect(try mode(of: folder.eventLog) == 0o600)
    }

    private func mode(of path: String) throws -> Int {
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        return try #require(attributes[.posixPermissions] as? Int)
    }
}

@Suite struct ResetRefusalTests {
    @Test(arguments: [GuestMode.snp, .sevES])
    func encryptedStateGuestsAreNeverReset(mode: GuestMode) async throws {
        let workspace = try TemporaryFolder()
        let runtime = VMRuntime(workspace: Workspace(root: workspace.path), name: "secret")
        try runtime.folder.create()
        let record = RuntimeRecord(
            name: "secret", argv: [], qemuPath: "/usr/bin/qemu-system-x86_64", qemuVersion: "10.0.2", firmwarePath: nil,
            mode: mode, accel: "kvm", startedAt: Date(), warnings: [])
        try record.save(runtime.folder.stateFile)
        await #expect(throws: RuntimeError.resetRefused(name: "secret", mode: mode.displayName)) { try await runtime.reset() }
    }
}

@Suite struct QEMUVersionCacheTests {
    /// A stand-in QEMU that only answers --version.
    private func writeFakeQEMU(_ path: String, version: String) throws {
        try "#!/bin/sh\necho 'QEMU emulator version \(version)'\n".write(toFile: path, atomically: false, encoding: .utf8)
        chmod(path, 0o755)
    }

    @Test func versionIsReusedUntilTheBinaryChanges() throws {
        let folder = try TemporaryFolder()
        let workspace = Workspace(root: folder.path)
        let qemu = folder.path + "/qemu-system-x86_64"
        try writeFakeQEMU(qemu, version: "9.2.0")
        let first = try QEMUVersionCache.installation(workspace: workspace, explicitPath: qemu)
        #expect(first.version.description == "9.2.0")
        #expect(first.origin == "--qemu")

        // While the binary is unchanged the cached answer is used (proven by editing the cache).
        let cacheFile = workspace.runDirectory + "/qemu-discovery.json"
        var entry = try JSONDecoder().decode(
            QEMUVersionCache.Entry.self, from: try #require(FileManager.default.contents(atPath: cacheFile)))
        entry.installation.version = QEMUVersion(major: 8, minor: 0, micro: 0)
        try JSONEncoder().encode(entry).write(to: URL(fileURLWithPath: cacheFile))
        #expect(try QEMUVersionCache.installation(workspace: workspace, explicitPath: qemu).version.major == 8)

        // A rebuilt binary is asked again.
        try writeFakeQEMU(qemu, version: "10.0.2")
        #expect(try QEMUVersionCache.installation(workspace: workspace, explicitPath: qemu).version.description == "10.0.2")
    }
}
