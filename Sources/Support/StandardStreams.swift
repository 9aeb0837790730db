// Writing to standard output and error with write(2): FileHandle would need all of Foundation.
#if canImport(Glibc)
    import Glibc
#endif

public enum StandardStream {
    /// Writes all of `bytes` to `fd`, retrying short writes and EINTR. A closed pipe (EPIPE) ends
    /// the write quietly: `sevvm list | head` is not an error.
    public static func write(_ bytes: some Sequence<UInt8>, to fd: Int32 = STDOUT_FILENO) {
        _ = Array(bytes).withUnsafeBytes { DescriptorIO.writeAll($0, to: fd) }
    }

    /// Writes `text` to standard output as UTF-8 (no newline added).
    public static func print(_ text: String) { write(Array(text.utf8)) }
}

/// Writes to standard error without buffering surprises.
public func printError(_ message: String) {
    StandardStream.write(Array((message.hasSuffix("\n") ? message : message + "\n").utf8), to: STDERR_FILENO)
}
