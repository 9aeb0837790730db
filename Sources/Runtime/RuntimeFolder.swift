// Where one VM's runtime files live: run/NAME (0700) with its pidfile, sockets, logs and state.
import FoundationEssentials
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// The per-VM runtime folder. QEMU runs with this folder as its working directory and binds its
/// sockets by relative name, so a workspace deeper than the 107-byte unix socket limit still works.
public struct RuntimeFolder: Sendable, Equatable {
    public let name: String
    public let path: String
    /// The per-VM lock (beside the folder, so removing the folder never races with a lock holder).
    public let lockPath: String

    public init(workspace: Workspace, name: String) {
        self.name = name
        path = workspace.runtimeDirectory(for: name)
        lockPath = workspace.runDirectory + "/\(name).lock"
    }

    // Names relative to the folder, as QEMU is given them.
    public static let controlSocketName = "qmp.sock"
    public static let eventSocketName = "events.sock"
    /// QEMU's serial chardev socket; only the recorder connects to it.
    public static let serialSocketName = "serial.sock"
    /// The recorder's console socket that `sevvm console` attaches to.
    public static let consoleSocketName = "console.sock"
    public static let consoleLogName = "console.log"

    public var pidfile: String { path + "/qemu.pid" }
    public var controlSocket: String { path + "/" + Self.controlSocketName }
    public var eventSocket: String { path + "/" + Self.eventSocketName }
    public var serialSocket: String { path + "/" + Self.serialSocketName }
    public var consoleSocket: String { path + "/" + Self.consoleSocketName }
    public var consoleLog: String { path + "/" + Self.consoleLogName }
    /// QEMU's stderr (start-up errors and everything it reports while running). Given to QEMU as
    /// `-D` too: a daemonized QEMU sends stderr to /dev/null unless -D names a file, then to that file.
    public var qemuLog: String { path + "/qemu.log" }
    /// The recorder's own stderr (empty unless it failed).
    public var recorderLog: String { path + "/recorder.log" }
    public var eventLog: String { path + "/events.jsonl" }
    public var stateFile: String { path + "/state.json" }

    /// Files that only mean something while QEMU runs; stale after it is gone.
    var liveFiles: [String] { [pidfile, controlSocket, eventSocket, serialSocket, consoleSocket] }

    public var exists: Bool { FileManager.default.fileExists(atPath: path) }

    /// Creates run/ and run/NAME with mode 0700.
    func create() throws {
        let runDirectory = path.parentPath
        try AtomicFile.makeDirectory(runDirectory, permissions: 0o700)
        try AtomicFile.makeDirectory(path, permissions: 0o700)
    }

    /// Starts a fresh run: the last run's logs are kept as *.previous, live files removed.
    func prepareForStart() throws {
        try create()
        removeLiveFiles()
        for file in [consoleLog, qemuLog, eventLog, recorderLog, stateFile]
        where FileManager.default.fileExists(atPath: file) {
            rename(file, file + ".previous")
        }
        for log in [consoleLog, qemuLog, eventLog, recorderLog] {
            let fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw RuntimeError.io(path: log, operation: "create", errno: errno) }
            close(fd)
        }
    }

    func removeLiveFiles() {
        for file in liveFiles { unlink(file) }
    }

    /// Removes the whole folder (after a start that failed, so nothing stale is left).
    func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }
}
