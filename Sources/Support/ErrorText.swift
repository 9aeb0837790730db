// Plain-words text for errors from FoundationEssentials (CocoaError, POSIXError), which have no
// localizedDescription without all of Foundation.
import FoundationEssentials

#if canImport(Glibc)
    import Glibc
#endif

/// "No such file or directory: /proc/x" for a CocoaError carrying a POSIX error; the system's
/// words for a POSIXError; the error's own description otherwise.
public func errorText(_ error: any Error) -> String {
    if let cocoa = error as? CocoaError {
        let reason = (cocoa.underlying as? POSIXError).map { String(cString: strerror($0.code.rawValue)) } ?? "error \(cocoa.code.rawValue)"
        return cocoa.filePath.map { "\(reason): \($0)" } ?? reason
    }
    if let posix = error as? POSIXError { return String(cString: strerror(posix.code.rawValue)) }
    return "\(error)"
}

/// The errno inside a CocoaError or POSIXError, when there is one.
public func errnoCode(of error: any Error) -> Int32? {
    if let posix = error as? POSIXError { return posix.code.rawValue }
    if let cocoa = error as? CocoaError, let posix = cocoa.underlying as? POSIXError { return posix.code.rawValue }
    return nil
}
