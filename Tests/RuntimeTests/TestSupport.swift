// Test helpers: unique temporary folders and real QEMU processes that are always cleaned up by PID.
import Foundation
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// A unique folder removed when the value goes away.
final class TemporaryFolder: @unchecked Sendable {
    let path: String

    init(prefix: String = "sevvm-runtime") throws {
        var template = Array((NSTemporaryDirectory() + "/\(prefix)-XXXXXX").utf8CString)
        let made = template.withUnsafeMutableBufferPointer { buffer in buffer.baseAddress.flatMap { mkdtemp($0) } }
        guard made != nil else { throw SupportError.io(path: NSTemporaryDirectory(), operation: "mkdtemp in", errno: errno) }
        path =
            URL(fileURLWithPath: String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)).standardizedFileURL
            .path
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

enum QEMUForTests {
    /// qemu-system-x86_64 on PATH, or nil (tests needing it are skipped loudly).
    static let binary: String? = {
        let found = ProcessRunner.which("qemu-system-x86_64")
        if found == nil { print("SKIP: qemu-system-x86_64 is not installed; QEMU-backed runtime tests are skipped") }
        return found
    }()

    /// Kills `pid` with SIGKILL and waits until it is gone (a daemonized QEMU is not our child).
    static func killAndWait(_ pid: pid_t) {
        kill(pid, SIGKILL)
        for _ in 0..<200 {
            if access("/proc/\(pid)", F_OK) != 0 { return }
            if let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), stat.contains(") Z") { return }
            usleep(10_000)
        }
    }
}
