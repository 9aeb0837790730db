// QMPQuery: a short QMP conversation on the calling thread, for one-shot commands such as `sevvm status`.
import FoundationEssentials
import Support

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
    private let timeout: Duration
    private var reader: MessageReader

    /// Runs `body` with a negotiated session on the socket at `socketPath`, then closes it.
    /// `timeout` bounds the connect, the greeting and each command.
    public static func withSession<T>(socketPath: String, timeout: Duration = .seconds(5), _ body: (QMPQuery) throws -> T) throws -> T {
        let fd = try QMPClient.openSocket(path: socketPath, timeout: timeout)
        defer { close(fd) }
        let session = try QMPQuery(fd: fd, socketPath: socketPath, timeout: timeout)
        _ = try session.execute("qmp_capabilities")
        return try body(session)
    }

    private init(fd: Int32, socketPath: String, timeout: Duration) throws {
        self.socketPath = socketPath
        self.timeout = timeout
        reader = MessageReader(fd: fd)
        // The greeting is QEMU's first message, and it sends nothing else before a command.
        let first: JSONDocument
        do {
            first = try reader.next(
                until: ContinuousClock.now + timeout, timedOut: .greetingTimeout(path: socketPath, seconds: timeout.seconds))
        } catch QMPError.greetingTimeout(let path, let seconds) {
            throw QMPError.greetingTimeout(path: path, seconds: seconds)
        } catch {
            // End of file, text that is not JSON, or JSON that is not a message: not QMP.
            throw reader.notQMP(path: socketPath)
        }
        guard let greeting = QMPGreeting(message: first) else { throw reader.notQMP(path: socketPath) }
        self.greeting = greeting
    }

    /// Runs `command` and returns its `return` value; a QMP error throws `QMPError.commandFailed`.
    public func execute(_ command: String, arguments: JSONValue? = nil) throws -> JSONDocument {
        try send(command, arguments: arguments)
        let deadline = ContinuousClock.now + timeout
        while true {
            let message: JSONDocument
            do {
                message = try reader.next(until: deadline, timedOut: .timeout(command: command, seconds: timeout.seconds))
            } catch MessageReader.EndOfStream.closed {
                throw QMPError.disconnected(reason: "QEMU closed the connection before answering '\(command)'")
            } catch MessageReader.EndOfStream.failed(let code) {
                throw QMPError.disconnected(reason: "reading the reply to '\(command)': \(String(cString: strerror(code)))")
            }
            if message["event"] != nil { continue }
            if let error = message["error"] { throw QMPError.commandFailed(command: command, error: error) }
            if let value = message["return"] { return value }
        }
    }

    private func send(_ command: String, arguments: JSONValue?) throws {
        let failure = JSONC.withRequest(command, arguments: arguments, id: nil) { text -> QMPError? in
            guard let text, let base = text.baseAddress else { return .protocolViolation("json-c could not serialize '\(command)'") }
            let failure = DescriptorIO.writeAll(UnsafeRawBufferPointer(start: base, count: text.count), to: reader.fd)
            return failure == 0 ? nil : .disconnected(reason: "sending '\(command)': \(String(cString: strerror(failure)))")
        }
        if let failure { throw failure }
    }
}

/// Whole QMP messages from a socket, read with poll-bounded blocking reads.
private struct MessageReader {
    let fd: Int32
    private let decoder = QMPStreamDecoder()
    private var received: [JSONDocument] = []
    private var buffer = [UInt8](repeating: 0, count: 65536)
    /// The first bytes the peer sent, to name a peer that is not QMP.
    private var firstBytes: [UInt8] = []

    /// Thrown when the stream ends (closed, or a read failed with an errno): what it means
    /// depends on what the caller was waiting for.
    enum EndOfStream: Error {
        case closed
        case failed(Int32)
    }

    init(fd: Int32) { self.fd = fd }

    /// The next message; `timedOut` when none is complete by `deadline`, `EndOfStream.closed` at end of file.
    mutating func next(until deadline: ContinuousClock.Instant, timedOut: QMPError) throws -> JSONDocument {
        while received.isEmpty {
            let left = ContinuousClock.now.duration(to: deadline)
            guard left > .zero, Self.waitReadable(fd, left) else { throw timedOut }
            let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                throw EndOfStream.failed(errno)
            }
            guard count > 0 else { throw EndOfStream.closed }
            if firstBytes.count < 512 { firstBytes += buffer[0..<min(count, 512 - firstBytes.count)] }
            var decoded: [JSONDocument] = []
            try buffer.withUnsafeBytes { raw in
                try decoder.feed(UnsafeRawBufferPointer(rebasing: raw[0..<count])) { message, _ in decoded.append(message) }
            }
            received += decoded
        }
        return received.removeFirst()
    }

    func notQMP(path: String) -> QMPError {
        .notQMP(path: path, received: String(decoding: firstBytes, as: UTF8.self))
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
