// Process plumbing: liveness from the pidfile lock and /proc, starting children through Support's Spawn.
import FoundationEssentials
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

    /// Starts a child through Support's Spawn, reporting a failure in Runtime's terms.
    static func spawn(_ request: SpawnRequest) throws -> pid_t {
        do {
            return try Spawn.start(request)
        } catch SupportError.spawnFailed(let executable, let code) {
            throw RuntimeError.spawnFailed(executable: executable, errno: code)
        }
    }
}
