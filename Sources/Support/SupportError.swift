// The one error type of the Support target: file, lock and process failures with their context.
import FoundationEssentials

#if canImport(Glibc)
    import Glibc
#endif

public enum SupportError: Error, CustomStringConvertible, Equatable {
    case io(path: String, operation: String, errno: Int32)
    case lockBusy(path: String)
    case lockTimeout(path: String, seconds: Double)
    case spawnFailed(executable: String, errno: Int32)
    case executableNotFound(name: String)

    public var description: String {
        switch self {
        case .io(let path, let operation, let code):
            return "\(operation) \(path): \(String(cString: strerror(code)))"
        case .lockBusy(let path):
            return "\(path) is locked by another sevvm command; try again when it has finished"
        case .lockTimeout(let path, let seconds):
            return "waited \(seconds)s for the lock \(path); another sevvm command holds it"
        case .spawnFailed(let executable, let code):
            return "could not start \(executable): \(String(cString: strerror(code)))"
        case .executableNotFound(let name):
            return "\(name) was not found on PATH; install it or give its full path"
        }
    }
}
