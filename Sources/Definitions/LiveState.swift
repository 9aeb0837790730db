// A quick liveness probe for `list`: is QEMU running for this VM? (The Runtime area owns the full status.)
import FoundationEssentials
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// What the pidfile says, checked the way DESIGN.md asks: QEMU's POSIX lock on its pidfile plus /proc.
public enum LiveState: Sendable, Equatable, CustomStringConvertible {
    case stopped
    case running(pid: Int32)
    /// A pidfile without a live QEMU: it crashed or was killed.
    case crashed(pid: Int32?)

    /// The pidfile QEMU keeps locked while it runs (run/NAME/qemu.pid).
    public static func pidfilePath(workspace: Workspace, name: String) -> String {
        workspace.runtimeDirectory(for: name) + "/qemu.pid"
    }

    /// Probes run/NAME/qemu.pid without starting any process: cheap enough for `list`.
    public static func probe(workspace: Workspace, name: String) -> LiveState {
        let pidfile = pidfilePath(workspace: workspace, name: name)
        guard access(pidfile, F_OK) == 0 else { return .stopped }
        if let holder = FileLock.posixLockHolder(pidfile), holder > 0, access("/proc/\(holder)", F_OK) == 0 {
            return .running(pid: holder)
        }
        let recorded = (try? String(contentsOfFile: pidfile, encoding: .utf8)).flatMap { Int32($0.trimmingWhitespace()) }
        return .crashed(pid: recorded)
    }

    /// The state word shared with `status --json`.
    public var word: String {
        switch self {
        case .stopped: return "stopped"
        case .running: return "running"
        case .crashed: return "crashed"
        }
    }

    public var description: String {
        switch self {
        case .running(let pid): return "running (pid \(pid))"
        default: return word
        }
    }
}
