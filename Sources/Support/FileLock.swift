// Advisory locks (flock) on lock files: state changes in sevvm happen under one of these.
import FoundationEssentials

#if canImport(Glibc)
    import Glibc
#endif

/// An exclusive flock(2) on a lock file. The kernel drops it when the process dies, so a killed
/// sevvm never leaves a lock behind. Released by `unlock()` or on deinit.
public final class FileLock: @unchecked Sendable {
    public let path: String
    private var fd: Int32

    private init(path: String, fd: Int32) {
        self.path = path
        self.fd = fd
    }

    /// Takes the lock, waiting up to `timeout` seconds (nil: wait forever, 0: don't wait).
    public static func acquire(_ path: String, timeout: Double? = 10) throws -> FileLock {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw SupportError.io(path: path, operation: "open lock file", errno: errno) }
        if timeout == nil {
            while flock(fd, LOCK_EX) != 0 {
                if errno != EINTR {
                    let e = errno
                    close(fd)
                    throw SupportError.io(path: path, operation: "lock", errno: e)
                }
            }
            return FileLock(path: path, fd: fd)
        }
        let deadline = Date().addingTimeInterval(timeout ?? 0)
        var delay: useconds_t = 1_000
        while true {
            if flock(fd, LOCK_EX | LOCK_NB) == 0 { return FileLock(path: path, fd: fd) }
            let e = errno
            guard e == EWOULDBLOCK || e == EINTR else {
                close(fd)
                throw SupportError.io(path: path, operation: "lock", errno: e)
            }
            if Date() >= deadline {
                close(fd)
                if (timeout ?? 0) == 0 { throw SupportError.lockBusy(path: path) }
                throw SupportError.lockTimeout(path: path, seconds: timeout ?? 0)
            }
            // Back off between attempts: a lock holder runs for milliseconds to seconds.
            usleep(delay)
            delay = min(delay * 2, 50_000)
        }
    }

    /// True when another process holds an flock(2) lock on `path`.
    public static func isHeld(_ path: String) -> Bool {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        if flock(fd, LOCK_SH | LOCK_NB) != 0 { return errno == EWOULDBLOCK }
        flock(fd, LOCK_UN)
        return false
    }

    /// The PID holding a POSIX record lock (fcntl/lockf) on `path`, as QEMU holds on its pidfile
    /// while it runs; nil when nobody holds one or the file is missing.
    public static func posixLockHolder(_ path: String) -> pid_t? {
        let fd = open(path, O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var query = flock()
        query.l_type = Int16(F_WRLCK)
        query.l_whence = Int16(SEEK_SET)
        query.l_start = 0
        query.l_len = 0
        guard fcntl(fd, F_GETLK, &query) == 0, query.l_type != Int16(F_UNLCK) else { return nil }
        return query.l_pid
    }

    public func unlock() {
        guard fd >= 0 else { return }
        flock(fd, LOCK_UN)
        close(fd)
        fd = -1
    }

    deinit { unlock() }
}
