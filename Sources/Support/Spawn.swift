// Spawn: every program sevvm starts in the background goes through posix_spawn here (argv array, never a shell).
import FoundationEssentials

#if canImport(Glibc)
    import Glibc
#endif

/// How to start a program. `ProcessRunner.run` is the simple capture-everything form; this is for
/// children that outlive the call (QEMU, the event recorder, probe QEMUs, build steps).
public struct SpawnRequest: Sendable {
    /// Where a standard output stream goes.
    public enum Output: Sendable, Equatable {
        case null
        /// A file created 0600 if missing; `append` keeps what is there, otherwise it is truncated.
        case file(String, append: Bool)
        /// An open descriptor of the caller's, duplicated onto the stream.
        case descriptor(Int32)
        /// Standard error only: wherever standard output goes.
        case sameAsStandardOutput
    }

    public var argv: [String]
    /// The program to run; argv[0] when nil (then it must be a path).
    public var executable: String?
    /// The child's whole environment; nil inherits sevvm's.
    public var environment: [String: String]?
    public var workingDirectory: String?
    public var standardInput = "/dev/null"
    public var standardOutput = Output.null
    public var standardError = Output.null
    /// Open descriptors handed to the child as descriptors 3, 4, 5, ...
    public var passedDescriptors: [Int32] = []
    /// Start a new session (setsid): the child survives sevvm's terminal going away.
    public var newSession = false
    /// Start a new process group, so one signal to -pid reaches everything the child starts.
    public var newProcessGroup = false
    /// Signals reset to their default action in the child (sevvm may ignore or catch them).
    public var defaultSignals: [Int32] = [SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGCHLD]

    public init(_ argv: [String]) { self.argv = argv }
}

public enum Spawn {
    /// Starts the program and returns its PID. Nothing but the three standard streams and
    /// `passedDescriptors` is inherited: a stray pipe end kept open by a long-lived child (QEMU)
    /// would keep whoever reads sevvm's output waiting.
    public static func start(_ request: SpawnRequest) throws -> pid_t {
        let executable = request.executable ?? request.argv.first ?? ""
        guard !request.argv.isEmpty, !executable.isEmpty else {
            throw SupportError.spawnFailed(executable: "(empty argv)", errno: EINVAL)
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }

        // Every source descriptor is first copied above the numbers the child uses, so no dup2
        // onto 1, 2, 3, ... clobbers a source; dup2 then clears close-on-exec on the child's copy.
        var copies: [Int32] = []
        defer { copies.forEach { close($0) } }
        func copy(_ fd: Int32) throws -> Int32 {
            let duplicate = fcntl(fd, F_DUPFD_CLOEXEC, 64)
            guard duplicate >= 0 else { throw SupportError.spawnFailed(executable: executable, errno: EBADF) }
            copies.append(duplicate)
            return duplicate
        }
        posix_spawn_file_actions_addopen(&actions, 0, request.standardInput, O_RDONLY, 0)
        for (target, output) in [(Int32(1), request.standardOutput), (Int32(2), request.standardError)] {
            switch output {
            case .null:
                posix_spawn_file_actions_addopen(&actions, target, "/dev/null", O_WRONLY, 0)
            case .file(let path, let append):
                posix_spawn_file_actions_addopen(&actions, target, path, O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC), 0o600)
            case .descriptor(let fd):
                posix_spawn_file_actions_adddup2(&actions, try copy(fd), target)
            case .sameAsStandardOutput:
                posix_spawn_file_actions_adddup2(&actions, 1, target)
            }
        }
        for (index, fd) in request.passedDescriptors.enumerated() {
            posix_spawn_file_actions_adddup2(&actions, try copy(fd), Int32(3 + index))
        }
        let firstFree = Int32(3 + request.passedDescriptors.count)
        if let closeFrom = addCloseFrom {
            _ = closeFrom(&actions, firstFree)
        } else {
            for fd in openDescriptors() where fd >= firstFree { posix_spawn_file_actions_addclose(&actions, fd) }
        }
        if let directory = request.workingDirectory {
            guard let changeDirectory = addChangeDirectory else {
                throw SupportError.spawnFailed(executable: executable, errno: ENOSYS)
            }
            _ = changeDirectory(&actions, directory)
        }

        var flags = Int32(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)
        if request.newSession { flags |= setSID }
        if request.newProcessGroup {
            flags |= Int32(POSIX_SPAWN_SETPGROUP)
            posix_spawnattr_setpgroup(&attributes, 0)
        }
        posix_spawnattr_setflags(&attributes, Int16(flags))
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in request.defaultSignals { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)

        let arguments = request.argv.map { strdup($0) } + [nil]
        let environment = request.environment.map { $0.map { strdup("\($0.key)=\($0.value)") } + [nil] }
        defer { (arguments + (environment ?? [])).forEach { free($0) } }
        var pid: pid_t = 0
        let result = arguments.withUnsafeBufferPointer { argv -> Int32 in
            guard let argvBase = argv.baseAddress else { return EINVAL }
            guard let environment else { return posix_spawn(&pid, executable, &actions, &attributes, argvBase, environ) }
            return environment.withUnsafeBufferPointer { envp in
                posix_spawn(&pid, executable, &actions, &attributes, argvBase, envp.baseAddress)
            }
        }
        guard result == 0 else { throw SupportError.spawnFailed(executable: executable, errno: result) }
        return pid
    }

    /// Waits for the child to end (reaping it); its exit status, 128+N when signal N ended it,
    /// or -1 when it is not sevvm's child.
    public static func waitForExit(_ pid: pid_t) -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            if errno != EINTR { return -1 }
        }
        return exitCode(fromWaitStatus: status)
    }

    /// The exit status if the child has ended (reaping it), nil while it runs.
    public static func exitStatusIfEnded(_ pid: pid_t) -> Int32? {
        var status: Int32 = 0
        guard waitpid(pid, &status, WNOHANG) == pid else { return nil }
        return exitCode(fromWaitStatus: status)
    }

    /// WIFEXITED/WEXITSTATUS, which Swift does not import (they are macros): low 7 bits zero means
    /// a normal exit with the code in the next byte; otherwise 128 + the signal number, as shells say.
    private static func exitCode(fromWaitStatus status: Int32) -> Int32 {
        status & 0x7F == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
    }

    /// glibc's POSIX_SPAWN_SETSID (spawn.h), which Swift does not import.
    private static let setSID: Int32 = 0x80

    /// glibc's posix_spawn_file_actions_addchdir_np (2.29+) and addclosefrom_np (2.34+), looked up
    /// at run time because Swift's Glibc module does not expose GNU extensions.
    private typealias AddChangeDirectory = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32
    private typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
    private static let addChangeDirectory: AddChangeDirectory? = dlsym(nil, "posix_spawn_file_actions_addchdir_np").map {
        unsafeBitCast($0, to: AddChangeDirectory.self)
    }
    private static let addCloseFrom: AddCloseFrom? = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np").map {
        unsafeBitCast($0, to: AddCloseFrom.self)
    }

    private static func openDescriptors() -> [Int32] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []).compactMap { Int32($0) }
    }
}
