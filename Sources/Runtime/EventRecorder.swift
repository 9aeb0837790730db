// The per-VM recorder: a detached process that keeps every QMP event (events.jsonl) and the serial console (console.log).
import CShims
import FoundationEssentials
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// `start` opens everything the recorder needs before the guest runs (`-S`), then hands it over to a
/// detached `sevvm _record-events RUNDIR`, so nothing can be missed whatever the recorder's start-up
/// time: descriptor 3 is the negotiated event QMP monitor, 4 the connection to QEMU's serial socket,
/// 5 the listening console.sock that `sevvm console` clients attach to.
///
/// QEMU's own chardev logfile records nothing while no client is connected to a socket chardev,
/// so the recorder stays QEMU's console client (like podman's conmon): it appends the guest's output
/// to console.log and relays it to and from any attached console sessions. It ends when QEMU does.
public enum EventRecorder {
    public static let subcommand = "_record-events"

    /// Descriptors a recorder is started with.
    struct Handles {
        var events: Int32
        var serial: Int32
        var listener: Int32

        func closeAll() {
            for fd in [events, serial, listener] where fd >= 0 { close(fd) }
        }
    }

    /// Opens the event monitor, the serial connection and the console listener of a QEMU started with `-S`.
    static func open(folder: RuntimeFolder, timeout: Double) throws -> Handles {
        let events = try openMonitor(path: folder.eventSocket, timeout: timeout)
        var handles = Handles(events: events, serial: -1, listener: -1)
        do {
            handles.serial = try connect(folder.serialSocket)
            handles.listener = try listen(folder.consoleSocket)
        } catch {
            handles.closeAll()
            throw error
        }
        return handles
    }

    /// Starts the detached recorder on `handles` (closed here: the recorder owns them now).
    static func spawn(executable: String, folder: RuntimeFolder, handles: Handles) throws -> pid_t {
        defer { handles.closeAll() }
        var request = SpawnRequest([executable, subcommand, folder.path])
        request.workingDirectory = "/"
        request.standardError = .file(folder.recorderLog, append: true)
        request.passedDescriptors = [handles.events, handles.serial, handles.listener]
        request.newSession = true
        return try ProcessControl.spawn(request)
    }

    /// Connects to a QMP socket and finishes capability negotiation; returns the connected descriptor.
    static func openMonitor(path: String, timeout: Double) throws -> Int32 {
        let fd = try connect(path)
        var ok = false
        defer { if !ok { close(fd) } }
        var reader = LineReader(fd: fd)
        let deadline = Date().addingTimeInterval(timeout)
        guard let greeting = try reader.readLine(until: deadline), greeting.contains("\"QMP\"") else {
            throw RuntimeError.io(path: path, operation: "read the QMP greeting from", errno: ETIMEDOUT)
        }
        try writeAll(fd, Array("{\"execute\":\"qmp_capabilities\"}\n".utf8), path: path)
        guard let reply = try reader.readLine(until: deadline), reply.contains("\"return\"") else {
            throw RuntimeError.io(path: path, operation: "negotiate QMP capabilities on", errno: EPROTO)
        }
        ok = true
        return fd
    }

    static func connect(_ path: String) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw RuntimeError.io(path: path, operation: "create a socket for", errno: errno) }
        guard sevvm_unix_connect(fd, path) == 0 else {
            let code = errno
            close(fd)
            throw RuntimeError.io(path: path, operation: "connect to", errno: code)
        }
        return fd
    }

    /// A listening socket at `path`, mode 0600 (its folder is 0700 too).
    static func listen(_ path: String) throws -> Int32 {
        unlink(path)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw RuntimeError.io(path: path, operation: "create a socket for", errno: errno) }
        guard sevvm_unix_bind(fd, path) == 0, chmod(path, 0o600) == 0, Glibc.listen(fd, 8) == 0 else {
            let code = errno
            close(fd)
            throw RuntimeError.io(path: path, operation: "listen on", errno: code)
        }
        return fd
    }

    /// The recorder's loop (in the detached process): events to events.jsonl, console output to
    /// console.log and attached clients, client input to the guest, until QEMU closes both sockets.
    public static func run(folder: String, events: Int32 = 3, serial: Int32 = 4, listener: Int32 = 5) -> Int32 {
        signal(SIGHUP, SIG_IGN)
        signal(SIGPIPE, SIG_IGN)
        let eventLog = Glibc.open(folder + "/events.jsonl", O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
        let consoleLog = Glibc.open(folder + "/" + RuntimeFolder.consoleLogName, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
        guard eventLog >= 0, consoleLog >= 0 else { return 1 }
        var relay = Relay(eventLog: eventLog, consoleLog: consoleLog, events: events, serial: serial, listener: listener)
        relay.loop()
        close(listener)
        unlink(folder + "/" + RuntimeFolder.consoleSocketName)
        close(eventLog)
        close(consoleLog)
        return 0
    }

    static func writeAll(_ fd: Int32, _ bytes: [UInt8], path: String) throws {
        let failure = bytes.withUnsafeBytes { DescriptorIO.writeAll($0, to: fd) }
        if failure != 0 { throw RuntimeError.io(path: path, operation: "write to", errno: failure) }
    }
}

/// The recorder's poll loop state.
private struct Relay {
    let eventLog: Int32
    let consoleLog: Int32
    var events: Int32
    var serial: Int32
    let listener: Int32
    var clients: [Int32] = []
    var pendingEvent: [UInt8] = []

    init(eventLog: Int32, consoleLog: Int32, events: Int32, serial: Int32, listener: Int32) {
        self.eventLog = eventLog
        self.consoleLog = consoleLog
        self.events = events
        self.serial = serial
        self.listener = listener
    }

    mutating func loop() {
        var buffer = [UInt8](repeating: 0, count: 65536)
        while events >= 0 || serial >= 0 {
            var fds = [events, serial, listener].map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            fds += clients.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            if poll(&fds, nfds_t(fds.count), -1) < 0 {
                if errno == EINTR { continue }
                return
            }
            if fds[0].revents != 0, events >= 0 {
                let n = read(events, &buffer, buffer.count)
                if n <= 0 { closeEvents() } else { recordEvents(buffer[0..<n]) }
            }
            if fds[1].revents != 0, serial >= 0 {
                let n = read(serial, &buffer, buffer.count)
                if n <= 0 { closeSerial() } else { relayOutput(buffer[0..<n]) }
            }
            if fds[2].revents != 0 {
                let client = accept(listener, nil, nil)  // the recorder runs no programs: no close-on-exec needed
                if client >= 0 { clients.append(client) }
            }
            for index in fds.indices.dropFirst(3).reversed() where fds[index].revents != 0 {
                let client = fds[index].fd
                let n = read(client, &buffer, buffer.count)
                if n <= 0 {
                    drop(client)
                } else if serial >= 0 {
                    send(serial, buffer[0..<n])
                }
            }
        }
        for client in clients { close(client) }
    }

    /// Keeps complete event lines (QEMU ends them with CRLF) in events.jsonl.
    mutating func recordEvents(_ bytes: ArraySlice<UInt8>) {
        pendingEvent.append(contentsOf: bytes)
        while let newline = pendingEvent.firstIndex(of: 0x0A) {
            var line = Array(pendingEvent[..<newline])
            pendingEvent.removeFirst(newline + 1)
            if line.last == 0x0D { line.removeLast() }
            // Only events arrive here: the recorder never sends a command after negotiating.
            guard String(decoding: line, as: UTF8.self).contains("\"event\"") else { continue }
            line.append(0x0A)
            writeFile(eventLog, line[...])
        }
    }

    mutating func relayOutput(_ bytes: ArraySlice<UInt8>) {
        writeFile(consoleLog, bytes)
        for client in clients where !send(client, bytes) { drop(client) }
    }

    mutating func closeEvents() {
        close(events)
        events = -1
    }

    mutating func closeSerial() {
        close(serial)
        serial = -1
    }

    mutating func drop(_ client: Int32) {
        close(client)
        clients.removeAll { $0 == client }
    }

    /// Sends all of `bytes`; false when the peer is gone.
    @discardableResult
    func send(_ fd: Int32, _ bytes: ArraySlice<UInt8>) -> Bool {
        var offset = bytes.startIndex
        while offset < bytes.endIndex {
            let n = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EINTR { continue }
                return false
            }
            offset += n
        }
        return true
    }

    func writeFile(_ fd: Int32, _ bytes: ArraySlice<UInt8>) {
        var offset = bytes.startIndex
        while offset < bytes.endIndex {
            let n = bytes[offset...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                return
            }
            offset += n
        }
    }
}

/// Reads CRLF- or LF-terminated lines from a descriptor, with an optional deadline.
struct LineReader {
    let fd: Int32
    private var buffer: [UInt8] = []

    init(fd: Int32) { self.fd = fd }

    /// The next line without its terminator; nil at end of file. Throws ETIMEDOUT past `deadline`.
    mutating func readLine(until deadline: Date?) throws -> String? {
        while true {
            if let newline = buffer.firstIndex(of: 0x0A) {
                var line = Array(buffer[..<newline])
                buffer.removeFirst(newline + 1)
                if line.last == 0x0D { line.removeLast() }
                return String(decoding: line, as: UTF8.self)
            }
            if let deadline {
                let remaining = deadline.timeIntervalSinceNow
                guard remaining > 0 else { throw RuntimeError.io(path: "fd \(fd)", operation: "read", errno: ETIMEDOUT) }
                var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                let ready = poll(&pfd, 1, Int32(max(1, remaining * 1000)))
                if ready <= 0 { continue }
            }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                return nil
            }
            if n == 0 {
                guard !buffer.isEmpty else { return nil }
                let rest = String(decoding: buffer, as: UTF8.self)
                buffer.removeAll()
                return rest
            }
            buffer.append(contentsOf: chunk[0..<n])
        }
    }
}
