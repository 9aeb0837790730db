// ImageBytes: a firmware (or kernel, initrd) image's bytes, mapped read-only from its file, or held in memory.
import FoundationEssentials
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// Why a mapping: measuring hashes every byte of a 4 MiB image once. Reading it into an array
/// means zero-filling 4 MiB of fresh memory and copying the page cache into it, which took longer
/// than the hashing's share of a core in a VM; a populated read-only mapping is neither.
///
/// (A file truncated in place while mapped, for example by `cp` over it during a measurement,
/// would fault; sevvm's own writers replace files by rename, which leaves the mapping intact.)
public struct ImageBytes: ZeroBasedBytes, Sendable {
    final class Storage: @unchecked Sendable {
        let base: UnsafeRawPointer?
        let count: Int
        private let release: @Sendable (UnsafeRawPointer, Int) -> Void

        init(base: UnsafeRawPointer?, count: Int, release: @escaping @Sendable (UnsafeRawPointer, Int) -> Void) {
            self.base = base
            self.count = count
            self.release = release
        }

        deinit { if let base { release(base, count) } }
    }

    private let storage: Storage

    /// Copies `bytes` (images built in memory, as tests do).
    public init(_ bytes: [UInt8]) {
        let copy = UnsafeMutableRawPointer.allocate(byteCount: Swift.max(bytes.count, 1), alignment: 64)
        bytes.withUnsafeBytes { if let source = $0.baseAddress { copy.copyMemory(from: source, byteCount: $0.count) } }
        storage = Storage(base: UnsafeRawPointer(copy), count: bytes.count) { base, _ in
            UnsafeMutableRawPointer(mutating: base).deallocate()
        }
    }

    private init(storage: Storage) { self.storage = storage }

    /// The file's bytes: mapped when it is a non-empty regular file, read otherwise (pipes,
    /// devices). Throws `FirmwareError.unreadable`.
    public static func load(path: String) throws -> ImageBytes {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw FirmwareError.unreadable(path: path, errno: errno) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw FirmwareError.unreadable(path: path, errno: errno) }
        let size = Int(info.st_size)
        if info.st_mode & S_IFMT == S_IFREG && size > 0,
            let mapping = mmap(nil, size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0), mapping != MAP_FAILED
        {
            return ImageBytes(
                storage: Storage(base: UnsafeRawPointer(mapping), count: size) { base, count in
                    munmap(UnsafeMutableRawPointer(mutating: base), count)
                })
        }
        return ImageBytes(try readAll(fd, path: path))
    }

    /// Reads a descriptor to its end (pipes, devices, empty files).
    private static func readAll(_ fd: Int32, path: String) throws -> [UInt8] {
        var bytes: [UInt8] = []
        let failure = DescriptorIO.readToEnd(fd) { bytes += $0 }
        guard failure == 0 else { throw FirmwareError.unreadable(path: path, errno: failure) }
        return bytes
    }

    public var startIndex: Int { 0 }
    public var endIndex: Int { storage.count }

    public subscript(position: Int) -> UInt8 {
        precondition(position >= 0 && position < storage.count, "ImageBytes index \(position) out of range")
        return storage.base?.load(fromByteOffset: position, as: UInt8.self) ?? 0
    }

    /// The bytes in place (valid only during the call).
    public func withUnsafeBytes<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        try body(UnsafeRawBufferPointer(start: storage.base, count: storage.count))
    }
}

/// Byte collections indexed from zero (Array, ImageBytes; not slices), read as little-endian fields.
protocol ZeroBasedBytes: RandomAccessCollection where Element == UInt8, Index == Int {}

extension Array: ZeroBasedBytes where Element == UInt8 {}

extension ZeroBasedBytes {
    /// Little-endian integer at `offset`, nil when it would read past the end.
    func littleEndianUInt16(at offset: Int) -> UInt16? {
        littleEndian(at: offset, size: 2).map { UInt16(truncatingIfNeeded: $0) }
    }

    func littleEndianUInt32(at offset: Int) -> UInt32? {
        littleEndian(at: offset, size: 4).map { UInt32(truncatingIfNeeded: $0) }
    }

    func littleEndianUInt64(at offset: Int) -> UInt64? { littleEndian(at: offset, size: 8) }

    private func littleEndian(at offset: Int, size: Int) -> UInt64? {
        guard offset >= 0, offset + size <= count else { return nil }
        var value: UInt64 = 0
        for index in (0..<size).reversed() { value = value << 8 | UInt64(self[offset + index]) }
        return value
    }
}
