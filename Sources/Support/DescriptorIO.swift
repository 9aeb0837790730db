// Whole writes and reads on file descriptors: the loops every file, pipe and socket user here needs.
#if canImport(Glibc)
    import Glibc
#endif

public enum DescriptorIO {
    /// Writes all of `bytes` to `fd`, retrying short writes and EINTR: 0, or the errno that
    /// stopped it. Sockets are written with send(2) and MSG_NOSIGNAL, so a peer that went away is
    /// EPIPE rather than a SIGPIPE; anything else (files, pipes, terminals) with write(2).
    public static func writeAll(_ bytes: UnsafeRawBufferPointer, to fd: Int32) -> Int32 {
        guard let base = bytes.baseAddress else { return 0 }
        var socket = true
        var offset = 0
        while offset < bytes.count {
            let n =
                socket
                ? Glibc.send(fd, base + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
                : Glibc.write(fd, base + offset, bytes.count - offset)
            if n < 0 {
                if errno == ENOTSOCK && socket {
                    socket = false
                    continue
                }
                if errno == EINTR { continue }
                return errno
            }
            if n == 0 { return EIO }
            offset += n
        }
        return 0
    }

    /// Reads `fd` to its end, from `offset` with pread(2) when given, else from its position,
    /// handing each piece (at most `chunkSize` bytes) to `body`: 0, or the errno that stopped it.
    public static func readToEnd(
        _ fd: Int32, from offset: UInt64? = nil, chunkSize: Int = 1 << 16, _ body: (UnsafeRawBufferPointer) throws -> Void
    ) rethrows -> Int32 {
        var chunk = [UInt8](repeating: 0, count: chunkSize)
        var position = offset.map { off_t($0) }
        while true {
            let count = chunk.withUnsafeMutableBytes { buffer in
                position.map { pread(fd, buffer.baseAddress, buffer.count, $0) } ?? read(fd, buffer.baseAddress, buffer.count)
            }
            if count < 0 {
                if errno == EINTR { continue }
                return errno
            }
            if count == 0 { return 0 }
            try chunk.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
            position? += off_t(count)
        }
    }
}
