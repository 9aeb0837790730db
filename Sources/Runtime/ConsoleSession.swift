// The interactive serial console over the VM's console socket (QEMU keeps writing console.log meanwhile), and log following.
import CShims
import FoundationEssentials
import Support

#if canImport(Glibc)
    import Glibc
#endif

public enum ConsoleSession {
    /// Ctrl-] detaches, as in telnet and virsh console.
    public static let escapeByte: UInt8 = 0x1D

    /// Connects the terminal to the VM's serial console until Ctrl-] (on a TTY), the end of input, or
    /// QEMU closing the console. The terminal is put in raw mode while attached and restored after.
    public static func attach(_ runtime: VMRuntime, input: Int32 = STDIN_FILENO, output: Int32 = STDOUT_FILENO) throws {
        let path = runtime.folder.consoleSocket
        guard runtime.isRunning else { throw RuntimeError.notRunning(name: runtime.name, state: "not running") }
        let sock = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard sock >= 0 else { throw RuntimeError.consoleUnavailable(name: runtime.name, socket: path, reason: "socket() failed") }
        defer { close(sock) }
        guard sevvm_unix_connect(sock, path) == 0 else {
            throw RuntimeError.consoleUnavailable(name: runtime.name, socket: path, reason: String(cString: strerror(errno)))
        }
        let interactive = isatty(input) == 1
        var saved = termios()
        if interactive {
            tcgetattr(input, &saved)
            var raw = saved
            cfmakeraw(&raw)
            tcsetattr(input, TCSANOW, &raw)
        }
        defer { if interactive { tcsetattr(input, TCSANOW, &saved) } }
        if interactive {
            write(output, "Connected to the console of \(runtime.name); Ctrl-] detaches.\r\n")
        }
        pump(socket: sock, input: input, output: output, interactive: interactive)
        if interactive { write(output, "\r\nDetached from \(runtime.name).\r\n") }
    }

    private static func pump(socket sock: Int32, input: Int32, output: Int32, interactive: Bool) {
        var inputOpen = true
        var lingerUntil: Date?
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            if let lingerUntil, Date() >= lingerUntil { return }
            var fds = [pollfd(fd: sock, events: Int16(POLLIN), revents: 0)]
            if inputOpen { fds.append(pollfd(fd: input, events: Int16(POLLIN), revents: 0)) }
            let ready = poll(&fds, nfds_t(fds.count), 100)
            if ready < 0 {
                if errno == EINTR { continue }
                return
            }
            if fds[0].revents != 0 {
                let n = read(sock, &buffer, buffer.count)
                if n <= 0 { return }  // QEMU closed the console (it exited)
                writeAll(output, buffer[0..<n])
            }
            if inputOpen, fds.count > 1, fds[1].revents != 0 {
                let n = read(input, &buffer, buffer.count)
                if n <= 0 {
                    // End of piped input: show what the guest answers for a moment, then leave.
                    inputOpen = false
                    lingerUntil = Date().addingTimeInterval(1)
                    continue
                }
                var chunk = buffer[0..<n]
                if interactive, let escape = chunk.firstIndex(of: escapeByte) {
                    writeAll(sock, chunk[chunk.startIndex..<escape])
                    return
                }
                chunk = buffer[0..<n]
                writeAll(sock, chunk)
            }
        }
    }

    private static func write(_ fd: Int32, _ text: String) {
        writeAll(fd, ArraySlice(Array(text.utf8)))
    }

    /// A terminal or socket that stopped taking bytes ends the write; the session notices on its next read.
    private static func writeAll(_ fd: Int32, _ bytes: ArraySlice<UInt8>) {
        _ = bytes.withUnsafeBytes { DescriptorIO.writeAll($0, to: fd) }
    }
}

/// Prints a growing log file (console.log, events.jsonl) as it grows.
public enum LogFollower {
    /// Calls `emit` with each complete new line of `path` from `offset`; with `follow`, keeps going while
    /// the VM runs and stops once its QEMU (and recorder) are gone and the file is drained.
    public static func run(_ path: String, runtime: VMRuntime, follow: Bool, emit: (String) -> Void) {
        var offset: UInt64 = 0
        while true {
            let alive = follow && (runtime.isRunning || runtime.recorderPID != nil)
            let (lines, next) = EventLog.readLines(path, from: offset)
            lines.forEach(emit)
            offset = next
            if !alive {
                // Drain the last partial line, if the file ends without a newline.
                if let rest = FileManager.default.contents(atPath: path), UInt64(rest.count) > offset {
                    emit(String(decoding: rest[Int(offset)...], as: UTF8.self))
                }
                return
            }
            usleep(200_000)
        }
    }
}
