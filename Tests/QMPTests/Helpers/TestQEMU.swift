// TestQEMU: a real qemu-system-x86_64 (TCG, -S) with a QMP socket in a private temp folder, killed by PID.
import Foundation
import QMP
import Support

#if canImport(Glibc)
    import Glibc
#endif

final class TestQEMU {
    static let binary = ProcessRunner.which("qemu-system-x86_64")
    static var available: Bool {
        if binary == nil { print("QMPTests: qemu-system-x86_64 is not on PATH; skipping the tests that need real QEMU") }
        return binary != nil
    }

    let directory: String
    let qmpPath: String
    let process = Process()
    var pid: pid_t { process.processIdentifier }

    /// Starts QEMU with a QMP socket (and, when `monitorSocket` is set, a human monitor socket
    /// named so in the same folder), and waits until the sockets exist.
    init(machine: String = "none", socketDirectory: String? = nil, monitorSocket: String? = nil, extra: [String] = []) throws {
        directory = try socketDirectory ?? makeTemporaryDirectory()
        qmpPath = directory + "/qmp.sock"
        guard let binary = Self.binary else { throw TestFailure("qemu-system-x86_64 not found") }
        process.executableURL = URL(fileURLWithPath: binary)
        var arguments = [
            "-machine", machine, "-accel", "tcg", "-nodefaults", "-display", "none", "-S",
            "-qmp", "unix:\(qmpPath),server=on,wait=off",
        ]
        if let monitorSocket { arguments += ["-monitor", "unix:\(directory)/\(monitorSocket),server=on,wait=off"] }
        process.arguments = arguments + extra
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        let logPath = directory + "/qemu.log"
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        process.standardError = FileHandle(forWritingAtPath: logPath)
        try process.run()
        let expected = [qmpPath] + (monitorSocket.map { ["\(directory)/\($0)"] } ?? [])
        let deadline = Date().addingTimeInterval(20)
        while !expected.allSatisfy(isListening) {
            guard process.isRunning, Date() < deadline else {
                let log = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
                stop()
                throw TestFailure("QEMU did not listen on its sockets in \(directory): \(log)")
            }
            usleep(5_000)
        }
    }

    /// Kills QEMU by PID (if it still runs), reaps it and removes the folder.
    func stop() {
        if process.isRunning { kill(pid, SIGKILL) }
        process.waitUntilExit()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Waits (bounded) for QEMU to exit by itself, e.g. after `quit`.
    func waitForExit(seconds: Double = 10) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning && Date() < deadline { usleep(5_000) }
        return !process.isRunning
    }
}

/// True once a unix socket is bound AND listening (QEMU creates the file with bind(2) just before
/// listen(2), so the file alone is not enough); read from /proc/net/unix without connecting.
func isListening(_ path: String) -> Bool {
    // /proc files report size 0, so read to the end explicitly rather than trusting the size.
    guard let handle = FileHandle(forReadingAtPath: "/proc/net/unix") else { return false }
    defer { try? handle.close() }
    let table = String(decoding: handle.readDataToEndOfFile(), as: UTF8.self)
    // Columns: Num RefCount Protocol Flags Type St Inode Path; Flags 00010000 is __SO_ACCEPTCON.
    return table.split(separator: "\n").contains { line in
        let fields = line.split(separator: " ", omittingEmptySubsequences: true)
        return fields.count >= 8 && fields[7] == path && fields[3] == "00010000"
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A fresh private folder under /tmp (short, so socket paths stay under 107 bytes).
func makeTemporaryDirectory() throws -> String {
    var template = Array("/tmp/sevvm-qmp-XXXXXX".utf8CString)
    guard let result = mkdtemp(&template) else { throw TestFailure("mkdtemp failed: errno \(errno)") }
    return String(cString: result)
}

/// Runs `body` with a QMP session on a fresh QEMU; the session is closed and QEMU killed by PID
/// afterwards, also when the body fails.
func withQEMUSession<Result>(
    machine: String = "none", negotiate: Bool = true, _ body: (QMPClient, TestQEMU) async throws -> Result
) async throws -> Result {
    let qemu = try TestQEMU(machine: machine)
    defer { qemu.stop() }
    let client = try await QMPClient.connect(socketPath: qemu.qmpPath, negotiate: negotiate)
    defer { client.close() }
    return try await body(client, qemu)
}
