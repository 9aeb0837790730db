// QMPQuery: a short QMP conversation on the calling thread, for one-shot commands such as `sevvm status`.
import CJSONC
import FoundationEssentials

#if canImport(Glibc)
    import Glibc
#endif

/// Connects, reads the greeting, negotiates capabilities, runs commands one after another and
/// closes, all with blocking reads on the calling thread.
///
/// Why beside `QMPClient`: a command that asks QEMU two questions and exits spends more on
/// threads than on QEMU. The client's reader thread, its timeout timer and the hops between
/// Swift concurrency's threads cost about 2 ms of a 9 ms `status`; this costs none of that.
/// Events that arrive meanwhile are skipped (the per-VM recorder keeps them), and a command
/// is only sent after the previous reply, so replies need no ids.
public final class QMPQuery {
    public let greeting: QMPGreeting
    public let socketPath: String
    private let fd: Int32
    private let timeout: Duration
    private let decoder = QMPStreamDecoder()
    private var received: [JSONDocument] = []
    private var buffer = [UInt8](repeating: 0, count: 65536)

    /// Runs `body` with a negotiated session on the socket at `socketPath`, then closes it.
    /// `timeout` bounds the connect, the greeting and each command.
    public static func withSession<T>(socketPath: String, timeout: Duration = .seconds(5), _ body: (QMPQuery) throws -> T) throws -> T {
        let fd = try QMPClient.openSocket(path: socketPath, timeout: timeout)
        let session: QMPQuery
        do {
            session = try QMPQuery(fd: fd, socketPath: socketPath, timeout: timeout)
        } catch {
            close(fd)
            throw error
        }
        defer { close(fd) }
        _ = try session.execute("qmp_capabilities")
        return try body(session)
    }

    private init(fd: Int32, socketPath: String, timeout: Duration) throws {
        self.fd = fd
        self.socketPath = socketPath
        self.timeout = timeout
        greeting = try Self.readGreeting(fd: fd, path: socketPath, timeout: timeout)
    }

    /// Runs `command` and returns its `return` value; a QMP error throws `QMPError.commandFailed`.
    public func execute(_ command: String, arguments: JSONValue? = nil) throws -> JSONDocument {
        try send(command, arguments: arguments)
        let deadline = ContinuousClock.now + timeout
        while true {
            while !received.isEmpty {
                let message = received.removeFirst()
                if message["event"] != nil { continue }
                if let error = message["error"] {
                    throw QMPError.commandFailed(
                        command: command, errorClass: error["class"]?.string ?? "GenericError",
                        description: error["desc"]?.string ?? "(no description)")
                }
                if let value = message["return"] { return value }
            }
            try readMore(until: deadline, command: command)
        }
    }

    private func send(_ command: String, arguments: JSONValue?) throws {
        let message = json_object_new_object()
        defer { json_object_put(message) }
        json_object_object_add(message, "execute", json_object_new_string(command))
        if let arguments { json_object_object_add(message, "arguments", arguments.makeJSONC()) }
        var length = 0
        let flags = Int32(JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)
        guard let text = json_object_to_json_string_length(message, flags, &length) else {
            throw QMPError.protocolViolation("json-c could not serialize '\(command)'")
        }
        var offset = 0
        while offset < length {
            let n = Glibc.send(fd, text + offset, length - offset, Int32(MSG_NOSIGNAL))
            if n < 0 {
                if errno == EINTR { continue }
                throw QMPError.disconnected(reason: "sending '\(command)': \(String(cString: strerror(errno)))")
            }
            offset += n
        }
    }

    /// Waits for bytes until `deadline` and decodes whatever complete messages they finish.
    private func readMore(until deadline: ContinuousClock.Instant, command: String) throws {
        let left = ContinuousClock.now.duration(to: deadline)
        guard left > .zero, Self.waitReadable(fd, left) else { throw QMPError.timeout(command: command, seconds: timeout.seconds) }
        let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        if count < 0 {
            if errno == EINTR || errno == EAGAIN { return }
            throw QMPError.disconnected(reason: "reading the reply to '\(command)': \(String(cString: strerror(errno)))")
        }
        guard count > 0 else { throw QMPError.disconnected(reason: "QEMU closed the connection before answering '\(command)'") }
        try buffer.withUnsafeBytes { raw in
            try decoder.feed(UnsafeRawBufferPointer(rebasing: raw[0..<count])) { message, _ in received.append(message) }
        }
    }

    private static func readGreeting(fd: Int32, path: String, timeout: Duration) throws -> QMPGreeting {
        let decoder = QMPStreamDecoder()
        var firstBytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        let deadline = ContinuousClock.now + timeout
        while true {
            let left = ContinuousClock.now.duration(to: deadline)
            guard left > .zero, waitReadable(fd, left) else { throw QMPError.greetingTimeout(path: path, seconds: timeout.seconds) }
            let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count < 0 && (errno == EINTR || errno == EAGAIN) { continue }
            guard count > 0 else {
                throw QMPError.notQMP(path: path, received: String(decoding: firstBytes, as: UTF8.self))
            }
            firstBytes.append(contentsOf: buffer[0..<min(count, max(0, 512 - firstBytes.count))])
            var greeting: QMPGreeting?
            do {
                try buffer.withUnsafeBytes { raw in
                    try decoder.feed(UnsafeRawBufferPointer(rebasing: raw[0..<count])) { message, text in
                        guard greeting == nil else { return }
                        guard let parsed = QMPGreeting(message: message) else {
                            throw QMPError.notQMP(path: path, received: String(decoding: text, as: UTF8.self))
                        }
                        greeting = parsed
                    }
                }
            } catch let error as QMPError {
                if case .notQMP = error { throw error }
                throw QMPError.notQMP(path: path, received: String(decoding: firstBytes, as: UTF8.self))
            }
            if let greeting {
                // The greeting is QEMU's first message and it sends nothing else before a command.
                return greeting
            }
        }
    }

    /// poll(2) for input, at most `wait`; false on timeout.
    private static func waitReadable(_ fd: Int32, _ wait: Duration) -> Bool {
        let parts = wait.components
        let milliseconds = Int32(clamping: parts.seconds * 1000 + Int64(parts.attoseconds / 1_000_000_000_000_000) + 1)
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        while true {
            let ready = poll(&entry, 1, milliseconds)
            if ready < 0 && errno == EINTR { continue }
            return ready > 0
        }
    }
}
