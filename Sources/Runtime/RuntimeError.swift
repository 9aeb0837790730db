// The one error type of the Runtime target: what went wrong with a VM's process and what to do about it.
import FoundationEssentials

#if canImport(Glibc)
    import Glibc
#endif

public enum RuntimeError: Error, CustomStringConvertible, Equatable {
    case alreadyRunning(name: String, pid: Int32)
    case notRunning(name: String, state: String)
    case wrongState(name: String, state: String, needed: String)
    case qemuStartFailed(name: String, status: Int32, stderr: String, advice: [String], log: String)
    case qemuGone(name: String, during: String, log: String)
    case sevCheckFailed(name: String, expected: String, reported: String)
    case resetRefused(name: String, mode: String)
    case stopTimedOut(name: String, seconds: Double)
    case monitorUnavailable(name: String, socket: String, reason: String)
    case consoleUnavailable(name: String, socket: String, reason: String)
    case io(path: String, operation: String, errno: Int32)
    case spawnFailed(executable: String, errno: Int32)
    case badArguments(command: String, reason: String)

    public var description: String {
        switch self {
        case .alreadyRunning(let name, let pid):
            return "\(name) is already running (QEMU pid \(pid)); use `sevvm status \(name)` or `sevvm stop \(name)`"
        case .notRunning(let name, let state):
            return "\(name) is not running (state: \(state)); start it with `sevvm start \(name)`"
        case .wrongState(let name, let state, let needed):
            return "\(name) is \(state), but this needs it \(needed)"
        case .qemuStartFailed(let name, let status, let stderr, let advice, let log):
            var text = "QEMU refused to start \(name) (exit status \(status))"
            let detail = stderr.trimmingWhitespace
            if !detail.isEmpty { text += ":\n  " + detail.split(separator: "\n").joined(separator: "\n  ") }
            for line in advice { text += "\nhint: " + line }
            // The runtime folder of a failed start is removed; point at a log only when one remains.
            if FileManager.default.fileExists(atPath: log) { text += "\n(QEMU's full output: \(log))" }
            return text
        case .qemuGone(let name, let during, let log):
            return "QEMU of \(name) ended while \(during); see \(log) and `sevvm status \(name)`"
        case .sevCheckFailed(let name, let expected, let reported):
            return "\(name) started but QEMU reports \(reported) instead of \(expected); it was stopped. "
                + "Check `sevvm caps` and the definition's mode"
        case .resetRefused(let name, let mode):
            return "\(name) runs as \(mode): an SEV-ES/SNP guest's encrypted register state cannot be reset. "
                + "Use `sevvm stop \(name)` and `sevvm start \(name)` instead"
        case .stopTimedOut(let name, let seconds):
            return "\(name) did not stop within \(seconds)s; try `sevvm kill \(name)`"
        case .monitorUnavailable(let name, let socket, let reason):
            return "cannot talk to the QMP monitor of \(name) (\(socket)): \(reason)"
        case .consoleUnavailable(let name, let socket, let reason):
            return "cannot attach to the console of \(name) (\(socket)): \(reason)"
        case .io(let path, let operation, let code):
            return "\(operation) \(path): \(String(cString: strerror(code)))"
        case .spawnFailed(let executable, let code):
            return "could not start \(executable): \(String(cString: strerror(code)))"
        case .badArguments(let command, let reason):
            return "\(command): \(reason)"
        }
    }

    /// True when the error means "the VM is not in the state this command needs" (exit code 4).
    public var isWrongState: Bool {
        switch self {
        case .alreadyRunning, .notRunning, .wrongState, .resetRefused: return true
        default: return false
        }
    }
}
