// Runs external programs (qemu, qemu-img, git, make) from argv arrays, never through a shell.
import CShims
import FoundationEssentials

#if canImport(Glibc)
    import Glibc
#endif

/// What a finished program left behind.
public struct ProcessResult: Sendable {
    public var argv: [String]
    public var status: Int32
    public var standardOutput: Data
    public var standardError: Data

    public var succeeded: Bool { status == 0 }
    public var stdoutText: String { String(decoding: standardOutput, as: UTF8.self) }
    public var stderrText: String { String(decoding: standardError, as: UTF8.self) }
}

public enum ProcessRunner {
    /// Finds `name` on PATH (or returns it when it already contains a slash and is executable).
    public static func which(_ name: String, path: String? = environmentValue("PATH")) -> String? {
        if name.contains("/") { return access(name, X_OK) == 0 ? name : nil }
        for dir in (path ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":") {
            let candidate = "\(dir)/\(name)"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }

    /// Runs argv to completion with stdin on /dev/null, capturing stdout and stderr.
    /// `environment` entries are added to (or override) the current environment.
    public static func run(
        _ argv: [String],
        workingDirectory: String? = nil,
        environment: [String: String] = [:]
    ) throws -> ProcessResult {
        guard let first = argv.first else { throw SupportError.executableNotFound(name: "(empty argv)") }
        guard let executable = which(first) else { throw SupportError.executableNotFound(name: first) }
        let output = try Pipe(executable)
        let errors = try Pipe(executable)
        var request = SpawnRequest(argv)
        request.executable = executable
        request.workingDirectory = workingDirectory
        if !environment.isEmpty {
            request.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        }
        request.standardOutput = .descriptor(output.write)
        request.standardError = .descriptor(errors.write)
        let pid: pid_t
        do {
            pid = try Spawn.start(request)
        } catch {
            [output, errors].forEach { $0.closeBoth() }
            throw error
        }
        output.closeWrite()
        errors.closeWrite()
        let (outData, errData) = drain(output.read, errors.read)
        return ProcessResult(argv: argv, status: Spawn.waitForExit(pid), standardOutput: Data(outData), standardError: Data(errData))
    }

    /// Reads both of the child's output pipes until they close, in one poll loop: a chatty
    /// program never blocks on a full pipe and no thread is started.
    private static func drain(_ outFD: Int32, _ errFD: Int32) -> ([UInt8], [UInt8]) {
        var collected: [Int32: [UInt8]] = [outFD: [], errFD: []]
        var open: Set<Int32> = [outFD, errFD]
        var buffer = [UInt8](repeating: 0, count: 65536)
        while !open.isEmpty {
            var polls = open.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            if poll(&polls, nfds_t(polls.count), -1) < 0 {
                if errno == EINTR { continue }
                break
            }
            for entry in polls where entry.revents != 0 {
                let n = buffer.withUnsafeMutableBytes { Glibc.read(entry.fd, $0.baseAddress, $0.count) }
                if n > 0 {
                    collected[entry.fd, default: []].append(contentsOf: buffer[0..<n])
                } else if n == 0 || (errno != EINTR && errno != EAGAIN) {
                    close(entry.fd)
                    open.remove(entry.fd)
                }
            }
        }
        open.forEach { close($0) }
        return (collected[outFD] ?? [], collected[errFD] ?? [])
    }
}

/// A pipe whose both ends are close-on-exec in sevvm (Spawn duplicates the child's end).
private struct Pipe {
    let read: Int32
    let write: Int32

    init(_ executable: String) throws {
        var fds: [Int32] = [-1, -1]
        guard sevvm_pipe_cloexec(&fds) == 0 else { throw SupportError.spawnFailed(executable: executable, errno: errno) }
        read = fds[0]
        write = fds[1]
    }

    func closeWrite() { close(write) }
    func closeBoth() {
        close(read)
        close(write)
    }
}
