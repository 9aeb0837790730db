// Process plumbing: liveness from the pidfile lock and /proc, posix_spawn with a working folder, waiting.
import Foundation
import Support

#if canImport(Glibc)
    import Glibc
#endif

enum ProcessControl {
    /// The PID of the QEMU running VM `name` from `pidfile`, or nil. QEMU holds a POSIX lock on its
    /// pidfile while it runs; the holder's /proc/PID/cmdline must also be a QEMU started for this VM,
    /// so a recycled PID or a stale pidfile is never trusted.
    static func liveQEMU(pidfile: String, name: String) -> pid_t? {
        guard let pid = FileLock.posixLockHolder(pidfile), pid > 0 else { return nil }
        let argv = commandLine(of: pid)
        guard let first = argv.first, first.contains("qemu") else { return nil }
        guard let index = argv.firstIndex(of: "-name"), index + 1 < argv.count else { return nil }
        let value = argv[index + 1]
        return value == name || value.hasPrefix("guest=\(name),") || value == "guest=\(name)" ? pid : nil
    }

    /// True when `pid` runs `sevvm _record-events` for the folder `folder`.
    static func isRecorder(_ pid: pid_t, folder: String) -> Bool {
        let argv = commandLine(of: pid)
        return argv.contains(EventRecorder.subcommand) && argv.last == folder
    }

    static func commandLine(of pid: pid_t) -> [String] {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return [] }
        return data.split(separator: 0, omittingEmptySubsequences: false).dropLast().map {
            String(decoding: $0, as: UTF8.self)
        }
    }

    static func exists(_ pid: pid_t) -> Bool {
        // Zombies still answer kill(0); /proc/PID/stat tells them apart.
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return false }
        guard let close = stat.lastIndex(of: ")") else { return false }
        let rest = stat[stat.index(after: close)...].trimmingWhitespace
        return !rest.hasPrefix("Z") && !rest.hasPrefix("X")
    }

    /// Waits until `condition` is false, polling, up to `timeout` seconds; returns true if it became false.
    static func wait(timeout: Double, while condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        var delay: useconds_t = 2_000
        while condition() {
            if Date() >= deadline { return false }
            usleep(delay)
            delay = min(delay * 2, 50_000)
        }
        return true
    }

    /// What a spawned program's standard streams are connected to.
    struct Streams {
        var stdin = "/dev/null"
        var stdoutFile: String?
        var stderrFile: String?
        /// Open descriptors handed to the child as descriptors 3, 4, 5, ...
        var passedDescriptors: [Int32] = []
    }

    /// Spawns `argv` (argv[0] must be a path) with `workingDirectory`; returns its PID.
    static func spawn(_ argv: [String], workingDirectory: String?, streams: Streams, newSession: Bool) throws -> pid_t {
        guard let executable = argv.first else { throw RuntimeError.spawnFailed(executable: "(empty argv)", errno: EINVAL) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }

        posix_spawn_file_actions_addopen(&actions, 0, streams.stdin, O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, streams.stdoutFile ?? "/dev/null", O_WRONLY | O_APPEND | O_CREAT, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, streams.stderrFile ?? "/dev/null", O_WRONLY | O_APPEND | O_CREAT, 0o600)
        // Copies above every target number first, so no dup2 onto 3, 4, ... clobbers a source;
        // dup2 then clears close-on-exec on the child's copies.
        let copies = streams.passedDescriptors.map { fcntl($0, F_DUPFD_CLOEXEC, 64) }
        defer { copies.filter { $0 >= 0 }.forEach { close($0) } }
        for (index, copy) in copies.enumerated() {
            guard copy >= 0 else { throw RuntimeError.spawnFailed(executable: executable, errno: EBADF) }
            posix_spawn_file_actions_adddup2(&actions, copy, Int32(3 + index))
        }
        // Nothing else leaks into the child: an inherited pipe end would keep a caller reading our
        // output waiting for as long as QEMU runs.
        let firstFree = Int32(3 + copies.count)
        if let closeFrom = addCloseFromAction {
            closeFrom(&actions, firstFree)
        } else {
            for fd in openDescriptors() where fd >= firstFree { posix_spawn_file_actions_addclose(&actions, fd) }
        }
        if let workingDirectory {
            guard let addChdir = addChdirAction else { throw RuntimeError.spawnFailed(executable: executable, errno: ENOSYS) }
            addChdir(&actions, workingDirectory)
        }
        var flags = Int32(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)
        if newSession { flags |= spawnSetSID }
        posix_spawnattr_setflags(&attributes, Int16(flags))
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGCHLD] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)

        let cArgs = argv.map { strdup($0) } + [nil]
        defer { cArgs.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = cArgs.withUnsafeBufferPointer { buffer -> Int32 in
            guard let base = buffer.baseAddress else { return EINVAL }
            return posix_spawn(&pid, executable, &actions, &attributes, base, environ)
        }
        guard rc == 0 else { throw RuntimeError.spawnFailed(executable: executable, errno: rc) }
        return pid
    }

    /// glibc's POSIX_SPAWN_SETSID (spawn.h), which Swift does not import.
    private static let spawnSetSID: Int32 = 0x80

    /// glibc's posix_spawn_file_actions_addchdir_np (2.29+), looked up at run time because Swift's
    /// Glibc module does not expose GNU extensions: QEMU must start in the runtime folder.
    private typealias AddChdir = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32
    private static let addChdirAction: AddChdir? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addchdir_np") else { return nil }
        return unsafeBitCast(symbol, to: AddChdir.self)
    }()

    /// glibc's posix_spawn_file_actions_addclosefrom_np (2.34+), looked up like addchdir.
    private typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
    private static let addCloseFromAction: AddCloseFrom? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") else { return nil }
        return unsafeBitCast(symbol, to: AddCloseFrom.self)
    }()

    private static func openDescriptors() -> [Int32] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []).compactMap { Int32($0) }
    }

    /// Waits for a child to end; returns its exit status (128+signal when killed).
    static func waitForExit(_ pid: pid_t) -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            if errno != EINTR { return -1 }
        }
        if status & 0x7f == 0 { return (status >> 8) & 0xff }
        return 128 + (status & 0x7f)
    }
}
