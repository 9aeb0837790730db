// Helpers for end-to-end tests of the built `sevvm` binary: locating it and the tiny guest, running it, cleaning up by PID.
import Foundation
import Support

#if canImport(Glibc)
    import Glibc
#endif

enum CLIEnvironment {
    /// The package root, found from this file's path.
    static let packageRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    /// The `sevvm` binary built next to the test bundle (or $SEVVM_BIN).
    static let sevvm: String? = {
        if let explicit = ProcessInfo.processInfo.environment["SEVVM_BIN"], access(explicit, X_OK) == 0 { return explicit }
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var directory = URL(fileURLWithPath: exe).deletingLastPathComponent()
        // The test runner may live inside the .xctest bundle or beside it.
        for _ in 0..<3 {
            let candidate = directory.appendingPathComponent("sevvm").path
            if access(candidate, X_OK) == 0, !FileManager.default.fileExists(atPath: candidate + "/Contents") { return candidate }
            directory.deleteLastPathComponent()
        }
        print("SKIP: the sevvm binary was not found next to the tests (build it, or set SEVVM_BIN)")
        return nil
    }()

    static let qemu: String? = {
        let found = ProcessRunner.which("qemu-system-x86_64")
        if found == nil { print("SKIP: qemu-system-x86_64 is not installed; end-to-end tests are skipped") }
        return found
    }()

    /// images/tiny of the package, built with scripts/tiny-guest.sh when missing.
    static let tinyGuest: (kernel: String, initrd: String)? = {
        let folder = packageRoot + "/images/tiny"
        let kernel = folder + "/vmlinuz"
        let initrd = folder + "/initrd.img"
        if !FileManager.default.fileExists(atPath: kernel) || !FileManager.default.fileExists(atPath: initrd) {
            print("building the tiny guest into \(folder) (scripts/tiny-guest.sh)")
            let result = try? ProcessRunner.run([packageRoot + "/scripts/tiny-guest.sh", folder])
            if result?.succeeded != true {
                print("SKIP: scripts/tiny-guest.sh failed; guest-booting tests are skipped:\n\(result?.stderrText ?? "")")
                return nil
            }
        }
        return (kernel, initrd)
    }()

    static var canRunVMs: Bool { sevvm != nil && qemu != nil && tinyGuest != nil }
    static var canRunQEMU: Bool { sevvm != nil && qemu != nil }
}

/// A temporary workspace whose VMs are all killed (QEMU and recorder, by PID) and files removed at the end.
final class TestWorkspace: @unchecked Sendable {
    let root: String

    init(deepSuffix: String? = nil) throws {
        var template = Array((NSTemporaryDirectory() + "/sevvm-e2e-XXXXXX").utf8CString)
        let made = template.withUnsafeMutableBufferPointer { buffer in buffer.baseAddress.flatMap { mkdtemp($0) } }
        guard made != nil else { throw SupportError.io(path: NSTemporaryDirectory(), operation: "mkdtemp in", errno: errno) }
        let base = URL(fileURLWithPath: String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self))
            .standardizedFileURL.path
        root = deepSuffix.map { base + "/" + $0 } ?? base
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        cleanupRoot = base
    }

    private let cleanupRoot: String

    /// Runs sevvm with this workspace.
    @discardableResult
    func sevvm(_ arguments: String...) throws -> ProcessResult {
        try run(arguments)
    }

    func run(_ arguments: [String], environment: [String: String] = [:]) throws -> ProcessResult {
        let binary = CLIEnvironment.sevvm ?? "sevvm"
        let base = ["SEVVM_WORKSPACE": root, "NO_COLOR": "1"]
        return try ProcessRunner.run([binary] + arguments, environment: base.merging(environment) { _, new in new })
    }

    /// `sevvm create` for the tiny guest: direct kernel boot, 256 MiB, one vCPU, TCG.
    func createTiny(_ name: String, mode: String = "none", extra: [String] = []) throws {
        let guest = CLIEnvironment.tinyGuest
        let result = try run(
            [
                "create", name, "--mode", mode, "--memory", "256M", "--vcpus", "1", "--accel", "tcg",
                "--kernel", guest?.kernel ?? "/missing", "--initrd", guest?.initrd ?? "/missing", "--append", "console=ttyS0",
            ] + extra)
        guard result.succeeded else {
            throw SupportError.io(path: root + "/vms/\(name).json", operation: "sevvm create (\(result.stderrText))", errno: EINVAL)
        }
    }

    func runtimeFolder(_ name: String) -> String { root + "/run/" + name }

    /// Starts sevvm in the background with an open (silent) stdin, collecting its output.
    func background(_ arguments: [String]) throws -> BackgroundCommand {
        try BackgroundCommand(argv: [CLIEnvironment.sevvm ?? "sevvm"] + arguments, environment: ["SEVVM_WORKSPACE": root, "NO_COLOR": "1"])
    }

    func statusJSON(_ name: String) throws -> [String: Any] {
        let result = try sevvm("status", name, "--json")
        guard let object = try JSONSerialization.jsonObject(with: result.standardOutput) as? [String: Any] else {
            throw SupportError.io(path: "status --json", operation: "parse", errno: EINVAL)
        }
        return object
    }

    func state(_ name: String) throws -> String? { try statusJSON(name)["state"] as? String }

    /// Waits until `path` contains `text` (the guest's console needs ~11 s to boot under TCG).
    func waitFor(_ text: String, in path: String, timeout: Double = 120) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let data = FileManager.default.contents(atPath: path), String(decoding: data, as: UTF8.self).contains(text) {
                return true
            }
            usleep(200_000)
        }
        return false
    }

    /// QEMU processes started for VM `name` of this workspace.
    func qemuPIDs(_ name: String) -> [pid_t] {
        processes { argv in argv.first?.contains("qemu") == true && argv.contains("guest=\(name),process=sevvm-\(name)") }
            .filter { pid in
                // Only QEMUs whose pidfile lives in this workspace.
                ProcessList.commandLine(pid).contains(runtimeFolder(name) + "/qemu.pid")
            }
    }

    /// Recorder processes of this workspace's VMs.
    func recorderPIDs() -> [pid_t] {
        processes { argv in argv.contains("_record-events") && argv.last?.hasPrefix(self.root + "/run/") == true }
    }

    private func processes(matching: @escaping ([String]) -> Bool) -> [pid_t] {
        ProcessList.all().filter { matching(ProcessList.commandLine($0)) }
    }

    deinit {
        for pid in ProcessList.all() {
            let argv = ProcessList.commandLine(pid)
            let ours = argv.contains { $0.hasPrefix(root + "/run/") }
            if ours, argv.first?.contains("qemu") == true || argv.contains("_record-events") { ProcessList.killAndWait(pid) }
        }
        try? FileManager.default.removeItem(atPath: cleanupRoot)
    }
}

enum ProcessList {
    static func all() -> [pid_t] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { pid_t($0) }
    }

    static func commandLine(_ pid: pid_t) -> [String] {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return [] }
        return data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
    }

    static func isGone(_ pid: pid_t) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return true }
        return stat.contains(") Z ")
    }

    static func killAndWait(_ pid: pid_t) {
        kill(pid, SIGKILL)
        for _ in 0..<300 where !isGone(pid) { usleep(10_000) }
    }
}

/// A sevvm command left running (console, events -f) while the test does something else.
final class BackgroundCommand: @unchecked Sendable {
    private let process = Process()
    private let input = Pipe()
    private let output = Pipe()

    init(argv: [String], environment: [String: String]) throws {
        process.executableURL = URL(fileURLWithPath: argv[0])
        process.arguments = Array(argv.dropFirst())
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        process.standardInput = input
        process.standardOutput = output
        process.standardError = output
        try process.run()
    }

    /// Waits up to `seconds` for the command to end by itself (killing it after that), and returns its output.
    func finish(within seconds: Double) -> String {
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning, Date() < deadline { usleep(50_000) }
        terminate()
        process.waitUntilExit()
        return String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    }

    func terminate() {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }
}
