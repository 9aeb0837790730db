// sevvm's environment: single variables, and where temporary files go.
#if canImport(Glibc)
    import Glibc
#endif

/// One variable of sevvm's environment. Why not ProcessInfo's `environment`: it copies the whole
/// environment into a new dictionary on every call, and hot commands ask for single variables.
public func environmentValue(_ name: String) -> String? {
    getenv(name).map { String(cString: $0) }
}

/// Where temporary files go: $TMPDIR when set, else /tmp (NSTemporaryDirectory's rule).
public var temporaryDirectoryPath: String {
    let value = environmentValue("TMPDIR") ?? ""
    return value.isEmpty ? "/tmp" : String(value.hasSuffix("/") && value.count > 1 ? value.dropLast() : Substring(value))
}
