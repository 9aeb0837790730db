// Runs a build step's actions: programs from argv with output streamed to the step's log, and staged file moves.
import FoundationEssentials
import Support

#if canImport(Glibc)
    import Glibc
#endif

// Set from the SIGINT/SIGTERM handler (async-signal-safe: a flag and kill(2) only).
nonisolated(unsafe) private var interruptRequested: sig_atomic_t = 0
nonisolated(unsafe) private var runningChild: pid_t = 0

/// Ctrl-C during a build: the running program is interrupted, the step stays unfinished in the
/// record, and the next run resumes at it. A real handler (not SIG_IGN) so children still get
/// the default disposition after exec.
enum InterruptGuard {
    static func install() {
        interruptRequested = 0
        let handler: @convention(c) (Int32) -> Void = { _ in
            interruptRequested = 1
            // The step runs in its own process group (out of the terminal's reach): pass it on.
            if runningChild > 0 { kill(-runningChild, SIGINT) }
        }
        signal(SIGINT, handler)
        signal(SIGTERM, handler)
    }

    static func uninstall() {
        signal(SIGINT, SIG_DFL)
        signal(SIGTERM, SIG_DFL)
    }

    static var requested: Bool { interruptRequested != 0 }
}

/// A request to stop a running build from another thread (what Ctrl-C does from a signal).
/// The running step's process group gets SIGTERM.
final class Cancellation: @unchecked Sendable {
    private let lock = Lock()
    private var cancelled = false
    private var child: pid_t = 0

    func cancel() {
        lock.withLock {
            cancelled = true
            if child > 0 { kill(-child, SIGTERM) }
        }
    }

    var isCancelled: Bool { lock.withLock { cancelled } || InterruptGuard.requested }

    /// Registers the running program; one started just after a cancel is stopped at once.
    func running(_ pid: pid_t) {
        lock.withLock {
            child = pid
            if cancelled && pid > 0 { kill(-pid, SIGTERM) }
        }
    }
}

struct StepExecutor {
    let environment: [String: String]
    var cancellation = Cancellation()

    /// Runs every action of `step`, logging to its log file (replaced each run). Returns the files
    /// an install action placed.
    func run(_ step: BuildStep) throws -> [String] {
        let log = try openLog(step.logPath)
        defer { close(log) }
        var installed: [String] = []
        for action in step.actions {
            if cancellation.isCancelled { throw BuilderError.interrupted(component: step.component.rawValue, step: step.kind.rawValue) }
            writeLine(log, "# " + action.displayLine + (action.command.map { "   (in \($0.workingDirectory))" } ?? ""))
            do {
                switch action {
                case .run(let command): try execute(command, step: step, log: log)
                default: installed += try perform(action, step: step)
                }
            } catch let error as BuilderError {
                throw error
            } catch {
                throw classify(error, path: step.logPath, step: step)
            }
        }
        return installed
    }

    /// The step's log, created 0644 and truncated: a descriptor the step's programs write to directly.
    private func openLog(_ path: String) throws -> Int32 {
        let directory = path.parentPath
        do {
            try AtomicFile.makeDirectory(directory)
        } catch {
            throw BuilderError.io(path: directory, operation: "create the log folder", detail: "\(error)")
        }
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw BuilderError.io(path: path, operation: "create the log", detail: String(cString: strerror(errno)))
        }
        return fd
    }

    private func writeLine(_ log: Int32, _ text: String) {
        StandardStream.write(Array((text + "\n").utf8), to: log)
    }

    private func execute(_ command: StepCommand, step: BuildStep, log: Int32) throws {
        var env = environment.merging(command.environment) { _, new in new }
        env["GIT_TERMINAL_PROMPT"] = "0"  // never wait for a password nobody will type
        guard let name = command.argv.first else { return }
        let executable: String?
        if name.contains("/") {
            let path = name.hasPrefix("/") ? name : command.workingDirectory + "/" + name
            executable = access(path, X_OK) == 0 ? path : nil
        } else {
            executable = ProcessRunner.which(name, path: env["PATH"])
        }
        guard let executable else {
            writeLine(log, "sevvm: \(name) was not found (PATH=\(env["PATH"] ?? ""))")
            throw failure(command, status: 127, step: step)
        }
        let pid: pid_t
        do {
            pid = try Self.spawn(
                executable, command.argv, environment: env, directory: command.workingDirectory, output: log)
        } catch {
            writeLine(log, "sevvm: could not start \(executable): \(error)")
            throw failure(command, status: 127, step: step)
        }
        runningChild = pid
        cancellation.running(pid)
        let code = Spawn.waitForExit(pid)
        cancellation.running(0)
        runningChild = 0
        // Whatever the step left running in its group (a daemon, an orphaned recipe) goes with it.
        kill(-pid, SIGKILL)
        if cancellation.isCancelled { throw BuilderError.interrupted(component: step.component.rawValue, step: step.kind.rawValue) }
        guard code == 0 else { throw failure(command, status: code, step: step) }
    }

    /// Starts a step in a process group of its own, so a cancel or Ctrl-C reaches the step's whole
    /// tree (make and what it runs) and nothing it leaves behind can hold sevvm up. Output goes
    /// straight to the log file descriptor; stdin is /dev/null; signals start at their defaults.
    static func spawn(_ executable: String, _ argv: [String], environment: [String: String], directory: String, output: Int32)
        throws -> pid_t
    {
        var request = SpawnRequest(argv)
        request.executable = executable
        request.environment = environment
        request.workingDirectory = directory
        request.standardOutput = .descriptor(output)
        request.standardError = .descriptor(output)
        request.newProcessGroup = true
        return try Spawn.start(request)
    }

    private func failure(_ command: StepCommand, status: Int32, step: BuildStep) -> BuilderError {
        let tail = Self.tail(of: step.logPath, lines: 15)
        if tail.contains(where: { $0.contains("No space left on device") }) {
            return .diskFull(path: command.workingDirectory, detail: "\(step.component) \(step.kind) failed; see \(step.logPath)")
        }
        return .stepFailed(
            component: step.component.rawValue, step: step.kind.rawValue, command: command.displayLine, status: status,
            logPath: step.logPath, logTail: tail)
    }

    private func classify(_ error: Error, path: String, step: BuildStep) -> BuilderError {
        if errnoCode(of: error) == ENOSPC || (error as? CocoaError)?.code == .fileWriteOutOfSpace {
            return .diskFull(path: path, detail: "\(step.component) \(step.kind)")
        }
        return .io(path: path, operation: "complete \(step.component) \(step.kind)", detail: errorText(error))
    }

    private func perform(_ action: StepAction, step: BuildStep) throws -> [String] {
        let files = FileManager.default
        switch action {
        case .run: return []
        case .makeDirectory(let path):
            try files.createDirectory(atPath: path, withIntermediateDirectories: true)
        case .removeTree(let path):
            if files.fileExists(atPath: path) { try files.removeItem(atPath: path) }
        case .copyFile(let from, let to, let onlyIfMissing):
            if onlyIfMissing && files.fileExists(atPath: to) { return [] }
            guard files.fileExists(atPath: from) else {
                throw BuilderError.outputMissing(component: step.component.rawValue, path: from, step: step.kind.rawValue)
            }
            if files.fileExists(atPath: to) { try files.removeItem(atPath: to) }
            try files.copyItem(atPath: from, toPath: to)
        case .touch(let path):
            if !files.fileExists(atPath: path) {
                try files.createDirectory(atPath: path.parentPath, withIntermediateDirectories: true)
                guard files.createFile(atPath: path, contents: Data()) else {
                    throw BuilderError.io(path: path, operation: "create", detail: String(cString: strerror(errno)))
                }
            }
        case .writeFile(let path, let contents):
            try AtomicFile.write(contents, to: path)
        case .removeFiles(let directory, let suffixes):
            for name in (try? files.contentsOfDirectory(atPath: directory)) ?? [] where suffixes.contains(where: name.hasSuffix) {
                try files.removeItem(atPath: directory + "/" + name)
            }
        case .collectFiles(let from, let suffixes, let to, let recursive):
            let names = (try? recursive ? files.subpathsOfDirectory(atPath: from) : files.contentsOfDirectory(atPath: from)) ?? []
            let matches = names.filter { name in suffixes.contains(where: name.hasSuffix) }.sorted()
            guard !matches.isEmpty else {
                throw BuilderError.outputMissing(
                    component: step.component.rawValue, path: "\(from)/*\(suffixes.joined(separator: "|"))", step: "package")
            }
            for name in matches {
                try files.moveItem(atPath: from + "/" + name, toPath: to + "/" + name.fileName)
            }
        case .commitStaging(let staging, let destination):
            return try commitStaging(staging, into: destination, step: step)
        case .replaceDirectory(let staging, let destination):
            try files.createDirectory(atPath: destination.parentPath, withIntermediateDirectories: true)
            let previous = destination + ".previous"
            if files.fileExists(atPath: previous) { try files.removeItem(atPath: previous) }
            if files.fileExists(atPath: destination) { try files.moveItem(atPath: destination, toPath: previous) }
            try files.moveItem(atPath: staging, toPath: destination)
            if files.fileExists(atPath: previous) { try files.removeItem(atPath: previous) }
            return ((try? files.contentsOfDirectory(atPath: destination)) ?? []).sorted().map { destination + "/" + $0 }
        }
        return []
    }

    /// Moves staged files into place one rename at a time: until this point the installed files of
    /// the previous build are untouched, and each file is replaced whole.
    private func commitStaging(_ staging: String, into destination: String, step: BuildStep) throws -> [String] {
        let files = FileManager.default
        let entries = ((try? files.subpathsOfDirectory(atPath: staging)) ?? []).sorted()
        var installed: [String] = []
        for relative in entries {
            let source = staging + "/" + relative
            let target = destination + "/" + relative
            var info = stat()
            guard lstat(source, &info) == 0 else { continue }
            if (info.st_mode & S_IFMT) == S_IFDIR {
                try files.createDirectory(atPath: target, withIntermediateDirectories: true)
                continue
            }
            try files.createDirectory(atPath: target.parentPath, withIntermediateDirectories: true)
            if rename(source, target) != 0 {
                guard errno == EXDEV else {
                    throw BuilderError.io(path: target, operation: "install", detail: String(cString: strerror(errno)))
                }
                // Another filesystem: copy beside the target, then rename over it.
                let temporary = target.parentPath + "/.sevvm-install-" + target.fileName
                if files.fileExists(atPath: temporary) { try files.removeItem(atPath: temporary) }
                try files.copyItem(atPath: source, toPath: temporary)
                guard rename(temporary, target) == 0 else {
                    throw BuilderError.io(path: target, operation: "install", detail: String(cString: strerror(errno)))
                }
            }
            installed.append(target)
        }
        guard !installed.isEmpty else {
            throw BuilderError.outputMissing(component: step.component.rawValue, path: staging, step: step.kind.rawValue)
        }
        try? files.removeItem(atPath: staging)
        return installed
    }

    /// The last `lines` non-empty lines of a log, read from its end (logs can be gigabytes).
    static func tail(of path: String, lines: Int, maximumBytes: Int = 16_384) -> [String] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return [] }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { return [] }
        let start = max(0, Int(info.st_size) - maximumBytes)
        var buffer = [UInt8](repeating: 0, count: Int(info.st_size) - start)
        let count = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, off_t(start)) }
        let text = String(decoding: buffer.prefix(max(0, count)), as: UTF8.self)
        let nonEmpty: [String] = text.split(whereSeparator: { $0 == "\n" || $0 == "\r" }).map(String.init).filter { !$0.isEmpty }
        return Array(nonEmpty.suffix(lines))
    }
}
