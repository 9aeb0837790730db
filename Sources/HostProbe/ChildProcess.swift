// Child processes caps awaits without blocking a thread: Support's Spawn, output to a file, waitpid polled.
import FoundationEssentials
import Support

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
        var request = SpawnRequest(argv)
        request.standardOutput = .file(outputPath, append: false)
        request.standardError = .sameAsStandardOutput
        do {
            return ChildProcess(pid: try Spawn.start(request), argv: argv, outputPath: outputPath)
        } catch SupportError.spawnFailed(_, let code) {
            throw HostProbeError.capabilityQEMUFailed(argv: argv, status: nil, stderr: String(cString: strerror(code)))
        }
    }

    /// The exit status once the child has ended (reaping it), nil while it runs.
    func exitStatus() -> Int32? { Spawn.exitStatusIfEnded(pid) }

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
        _ = Spawn.waitForExit(pid)
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
        var template = Array((temporaryDirectoryPath + "/sevvm-caps-XXXXXX").utf8CString)
        let made = template.withUnsafeMutableBufferPointer { buffer in buffer.baseAddress.flatMap { mkdtemp($0) } }
        guard made != nil else {
            throw HostProbeError.unreadable(path: temporaryDirectoryPath, operation: "create a folder in", errno: errno)
        }
        return String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
