// Child processes caps awaits without blocking a thread: posix_spawn, output to a file, waitpid polled.
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A child started with posix_spawn (argv array, no shell) whose stdout and stderr go to one file.
/// Foundation's Process and Support's ProcessRunner block a thread until the child ends and need
/// free Dispatch threads to notice it; caps runs QEMU while its own checks keep the (two-core)
/// pool busy, so it polls waitpid from async code instead.
struct ChildProcess {
    let pid: pid_t
    let argv: [String]
    let outputPath: String

    /// Starts `argv` (argv[0] must be a path) with stdin from /dev/null and output into `outputPath`.
    static func spawn(_ argv: [String], outputPath: String) throws -> ChildProcess {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        var cArguments: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { cArguments.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, argv[0], &actions, nil, &cArguments, environ)
        guard rc == 0 else {
            throw HostProbeError.capabilityQEMUFailed(argv: argv, status: nil, stderr: String(cString: strerror(rc)))
        }
        return ChildProcess(pid: pid, argv: argv, outputPath: outputPath)
    }

    /// The exit status once the child has ended (reaping it), nil while it runs.
    func exitStatus() -> Int32? {
        var status: Int32 = 0
        guard waitpid(pid, &status, WNOHANG) == pid else { return nil }
        // WIFEXITED/WEXITSTATUS are macros Swift does not import: low 7 bits 0 means a normal exit.
        return status & 0x7F == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
    }

    /// Waits (polling, never blocking a thread) for the child to end; returns its status.
    func wait(timeout: Duration) async throws -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let status = exitStatus() { return status }
            try await Task.sleep(for: .milliseconds(1))
        }
        return nil
    }

    /// What the child wrote so far.
    var output: String {
        FileManager.default.contents(atPath: outputPath).map { String(decoding: $0, as: UTF8.self) } ?? ""
    }

    /// Ends the child by its PID and reaps it (SIGKILL: a probe QEMU holds nothing worth saving).
    func killAndReap() {
        kill(pid, SIGKILL)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    }

    /// Runs `argv` to completion and returns its status and output.
    static func run(_ argv: [String], in folder: String, timeout: Duration = .seconds(30)) async throws -> (status: Int32, output: String) {
        let child = try spawn(argv, outputPath: folder + "/out-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(atPath: child.outputPath) }
        guard let status = try await child.wait(timeout: timeout) else {
            child.killAndReap()
            throw HostProbeError.capabilityQEMUFailed(argv: argv, status: nil, stderr: "no answer within \(timeout)")
        }
        return (status, child.output)
    }

    /// A 0700 folder for sockets and output files, unique per run.
    static func privateFolder() throws -> String {
        var template = Array((NSTemporaryDirectory() + "/sevvm-caps-XXXXXX").utf8CString)
        let made = template.withUnsafeMutableBufferPointer { buffer in buffer.baseAddress.flatMap { mkdtemp($0) } }
        guard made != nil else {
            throw HostProbeError.unreadable(path: NSTemporaryDirectory(), operation: "create a folder in", errno: errno)
        }
        return String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
