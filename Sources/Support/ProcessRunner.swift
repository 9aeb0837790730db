// Runs external programs (qemu, qemu-img, git, make) from argv arrays, never through a shell.
import Foundation

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
    public static func which(_ name: String, path: String? = ProcessInfo.processInfo.environment["PATH"]) -> String? {
        if name.contains("/") { return access(name, X_OK) == 0 ? name : nil }
        for dir in (path ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":") {
            let candidate = "\(dir)/\(name)"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }

    /// Runs argv to completion, capturing stdout and stderr. `input` is written to stdin.
    /// `environment` entries are added to (or override) the current environment.
    public static func run(
        _ argv: [String],
        workingDirectory: String? = nil,
        environment: [String: String] = [:],
        input: Data? = nil
    ) throws -> ProcessResult {
        guard let first = argv.first else { throw SupportError.executableNotFound(name: "(empty argv)") }
        guard let executable = which(first) else { throw SupportError.executableNotFound(name: first) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = Array(argv.dropFirst())
        if let workingDirectory { process.currentDirectoryURL = URL(fileURLWithPath: workingDirectory) }
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        }
        let out = Pipe()
        let err = Pipe()
        let inPipe = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = input == nil ? FileHandle.nullDevice : inPipe
        do {
            try process.run()
        } catch {
            throw SupportError.spawnFailed(executable: executable, errno: ENOENT)
        }
        if let input {
            let writer = inPipe.fileHandleForWriting
            DispatchQueue.global().async {
                writer.write(input)
                try? writer.close()
            }
        }
        // Read both pipes concurrently so a chatty program never blocks on a full pipe.
        let errBox = DataBox()
        let group = DispatchGroup()
        group.enter()
        let errHandle = err.fileHandleForReading
        DispatchQueue.global().async {
            errBox.set(errHandle.readDataToEndOfFile())
            group.leave()
        }
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        process.waitUntilExit()
        return ProcessResult(argv: argv, status: process.terminationStatus, standardOutput: outData, standardError: errBox.get())
    }
}

/// A Data value handed from one thread to another under a lock.
private final class DataBox: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()
    func set(_ value: Data) { lock.withLock { data = value } }
    func get() -> Data { lock.withLock { data } }
}
