// QMPClient: one QMP session on a unix socket: greeting, negotiation, id-matched commands, events.
import CJSONC
import CShims
import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A connected QMP session. Commands may be issued concurrently from any task; each gets a unique
/// id and its reply is matched by that id. A dedicated reader thread blocks in poll(2)/read(2),
/// decodes with json-c and resumes the waiting task directly, so a round trip costs one write, one
/// read and one continuation resume. Events are buffered from the moment of connection.
public final class QMPClient: Sendable {
    public let greeting: QMPGreeting
    /// Events in arrival order; the stream finishes when the connection ends. One consumer.
    public let events: AsyncStream<QMPEvent>
    public let socketPath: String
    public let timeouts: QMPTimeouts
    private let connection: QMPConnection

    private init(connection: QMPConnection, greeting: QMPGreeting, events: AsyncStream<QMPEvent>, timeouts: QMPTimeouts) {
        self.connection = connection
        self.greeting = greeting
        self.events = events
        self.socketPath = connection.path
        self.timeouts = timeouts
    }

    deinit { connection.close() }

    /// Connects to the QMP socket at `socketPath` (any length: paths over the 107-byte limit are
    /// reached through their folder), waits up to `timeout` for the connection and the greeting,
    /// and negotiates capabilities unless `negotiate` is false.
    public static func connect(
        socketPath: String, timeout: Duration = .seconds(5), negotiate: Bool = true, timeouts: QMPTimeouts = .default
    ) async throws -> QMPClient {
        let fd = try openSocket(path: socketPath, timeout: timeout)
        let (events, eventSink) = AsyncStream.makeStream(of: QMPEvent.self, bufferingPolicy: .bufferingNewest(65_536))
        let connection = QMPConnection(fd: fd, path: socketPath, greetingTimeout: timeout, events: eventSink)
        connection.start()
        let greeting = try await connection.waitForGreeting()
        let client = QMPClient(connection: connection, greeting: greeting, events: events, timeouts: timeouts)
        if negotiate {
            do {
                _ = try await client.executeRaw("qmp_capabilities", timeout: timeout)
            } catch {
                client.close()
                throw error
            }
        }
        return client
    }

    /// Runs `command` and returns its `return` value. QMP errors throw `QMPError.commandFailed`.
    public func execute(_ command: String, arguments: JSONValue? = nil, timeout: Duration? = nil) async throws -> JSONDocument {
        let reply = try await executeRaw(command, arguments: arguments, timeout: timeout)
        guard let value = reply["return"] else {
            throw QMPError.protocolViolation("the reply to '\(command)' has no \"return\": \(reply.serialized().prefix(200))")
        }
        return value
    }

    /// Runs `command` and returns the whole reply object (`{"return": ..., "id": ...}`).
    public func executeRaw(_ command: String, arguments: JSONValue? = nil, timeout: Duration? = nil) async throws -> JSONDocument {
        try await connection.send(command, arguments: arguments, timeout: timeout ?? timeouts.timeout(for: command))
    }

    /// Ends the session: pending commands fail with `disconnected`, the event stream finishes.
    public func close() { connection.close() }

    /// False once the connection ended (closed by either side or broken).
    public var isConnected: Bool { connection.failure == nil }

    /// Why the connection ended, or nil while it is up.
    public var disconnectReason: QMPError? { connection.failure }

    // MARK: socket set-up

    private static func openSocket(path: String, timeout: Duration) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw QMPError.io(operation: "socket", errno: errno) }
        // A unix connect blocks while the listener's backlog is full; SO_SNDTIMEO bounds that wait.
        setSendTimeout(fd, timeout)
        guard sevvm_unix_connect(fd, path) == 0 else {
            let code = errno
            Glibc.close(fd)
            throw connectError(path: path, errno: code, timeout: timeout)
        }
        setSendTimeout(fd, .seconds(30))
        return fd
    }

    private static func setSendTimeout(_ fd: Int32, _ duration: Duration) {
        let parts = duration.components
        var value = timeval(tv_sec: Int(parts.seconds), tv_usec: Int(parts.attoseconds / 1_000_000_000_000))
        if value.tv_sec == 0 && value.tv_usec == 0 { value.tv_usec = 1 }
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &value, socklen_t(MemoryLayout<timeval>.size))
    }

    private static func connectError(path: String, errno code: Int32, timeout: Duration) -> QMPError {
        switch code {
        case ENOENT, ENOTDIR:
            return .socketNotFound(path: path)
        case ECONNREFUSED:
            var info = stat()
            if stat(path, &info) == 0 && (info.st_mode & S_IFMT) != S_IFSOCK {
                return .io(operation: "connect to \(path) (it is not a socket)", errno: ENOTSOCK)
            }
            return .connectionRefused(path: path)
        case EACCES, EPERM:
            return .permissionDenied(path: path)
        case EAGAIN, EINPROGRESS, ETIMEDOUT:
            return .greetingTimeout(path: path, seconds: timeout.seconds)
        default:
            return .io(operation: "connect to \(path)", errno: code)
        }
    }
}

/// The shared state of one connection: the socket, the pending commands and the reader thread.
final class QMPConnection: @unchecked Sendable {
    let path: String
    private let fd: Int32
    /// Written to wake the reader when a command needs an earlier timeout check than it planned.
    private let wakeRead: Int32
    private let wakeWrite: Int32
    private let eventSink: AsyncStream<QMPEvent>.Continuation
    private let state: Mutex<State>
    /// Serializes writes and guards the descriptor's lifetime (closed only under this lock).
    private let writer = Mutex(WriterState())
    private let nextID = Atomic<Int64>(0)

    private struct Pending {
        var command: String
        var continuation: CheckedContinuation<JSONDocument, any Error>
        var deadline: UInt64
        var seconds: Double
    }

    private struct State {
        var pending: [Int64: Pending] = [:]
        var greeting: QMPGreeting?
        var greetingWaiter: CheckedContinuation<QMPGreeting, any Error>?
        var greetingDeadline: UInt64
        var greetingSeconds: Double
        /// The reader checks timeouts no later than this (monotonic ns); never after the earliest deadline.
        var armed: UInt64
        var failure: QMPError?
        var closeRequested = false
    }

    private struct WriterState { var closed = false }

    init(fd: Int32, path: String, greetingTimeout: Duration, events: AsyncStream<QMPEvent>.Continuation) {
        self.fd = fd
        self.path = path
        eventSink = events
        var pipeFDs: [Int32] = [-1, -1]
        if pipe(&pipeFDs) == 0 {
            for pipeFD in pipeFDs {
                _ = fcntl(pipeFD, F_SETFL, fcntl(pipeFD, F_GETFL) | O_NONBLOCK)
                _ = fcntl(pipeFD, F_SETFD, FD_CLOEXEC)
            }
        }
        wakeRead = pipeFDs[0]
        wakeWrite = pipeFDs[1]
        let deadline = monotonicNanoseconds() &+ greetingTimeout.nanoseconds
        state = Mutex(State(greetingDeadline: deadline, greetingSeconds: greetingTimeout.seconds, armed: deadline))
    }

    var failure: QMPError? { state.withLock { $0.failure } }

    func start() {
        let thread = Thread { [self] in readLoop() }
        thread.name = "qmp-reader"
        thread.start()
    }

    func waitForGreeting() async throws -> QMPGreeting {
        try await withCheckedThrowingContinuation { continuation in
            let outcome: Result<QMPGreeting, QMPError>? = state.withLock { state in
                if let greeting = state.greeting { return .success(greeting) }
                if let failure = state.failure { return .failure(failure) }
                state.greetingWaiter = continuation
                return nil
            }
            if let outcome { continuation.resume(with: outcome) }
        }
    }

    func close() {
        state.withLock { $0.closeRequested = true }
        // Wakes the reader (its read sees end of file); it then fails what is pending and cleans up.
        writer.withLock { writer in
            if !writer.closed { _ = shutdown(fd, Int32(SHUT_RDWR)) }
        }
    }

    func send(_ command: String, arguments: JSONValue?, timeout: Duration) async throws -> JSONDocument {
        try Task.checkCancellation()
        let id = nextID.wrappingAdd(1, ordering: .relaxed).newValue
        let message = json_object_new_object()
        json_object_object_add(message, "execute", json_object_new_string(command))
        if let arguments { json_object_object_add(message, "arguments", arguments.makeJSONC()) }
        json_object_object_add(message, "id", json_object_new_int64(id))
        defer { json_object_put(message) }
        var length = 0
        guard let text = json_object_to_json_string_length(message, Int32(JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE), &length)
        else { throw QMPError.protocolViolation("json-c could not serialize '\(command)'") }
        let seconds = timeout.seconds
        let deadline = monotonicNanoseconds() &+ timeout.nanoseconds

        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<JSONDocument, any Error>) in
                let (failure, needsWake) = state.withLock { state -> (QMPError?, Bool) in
                    if let failure = state.failure { return (failure, false) }
                    state.pending[id] = Pending(command: command, continuation: continuation, deadline: deadline, seconds: seconds)
                    guard deadline < state.armed else { return (nil, false) }
                    state.armed = deadline
                    return (nil, true)
                }
                if let failure {
                    continuation.resume(throwing: failure)
                    return
                }
                if needsWake { wake() }
                if let error = write(UnsafeRawPointer(text), length) {
                    complete(id: id, with: .failure(error))
                }
            }
        } onCancel: {
            complete(id: id, with: .failure(CancellationError()))
        }
    }

    private func complete(id: Int64, with result: Result<JSONDocument, any Error>) {
        state.withLock { $0.pending.removeValue(forKey: id) }?.continuation.resume(with: result)
    }

    private func wake() {
        var byte: UInt8 = 1
        _ = Glibc.write(wakeWrite, &byte, 1)
    }

    /// Writes the whole buffer; returns the error that ends the connection, if any.
    private func write(_ bytes: UnsafeRawPointer, _ count: Int) -> QMPError? {
        writer.withLock { writer -> QMPError? in
            if writer.closed { return .disconnected(reason: "the connection is closed") }
            var offset = 0
            while offset < count {
                let written = Glibc.send(fd, bytes + offset, count - offset, Int32(MSG_NOSIGNAL))
                if written < 0 {
                    if errno == EINTR { continue }
                    let code = errno
                    if code == EPIPE || code == ECONNRESET { return .disconnected(reason: "QEMU closed the connection") }
                    if code == EAGAIN { return .disconnected(reason: "QEMU stopped reading commands (send timed out)") }
                    return .io(operation: "send to \(path)", errno: code)
                }
                offset += written
            }
            return nil
        }
    }

    // MARK: the reader thread

    private func readLoop() {
        let capacity = 256 * 1024
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: capacity, alignment: 16)
        defer { buffer.deallocate() }
        let decoder = QMPStreamDecoder()
        var sawGreeting = false
        var firstBytes: [UInt8] = []
        var fds = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0), pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)]

        while true {
            guard let timeoutMilliseconds = checkDeadlines() else { return }
            let ready = poll(&fds, 2, timeoutMilliseconds)
            if ready < 0 {
                if errno == EINTR { continue }
                return finish(.io(operation: "poll on \(path)", errno: errno))
            }
            if fds[1].revents != 0 {
                var drain = [UInt8](repeating: 0, count: 64)
                while Glibc.read(wakeRead, &drain, drain.count) > 0 {}
            }
            guard fds[0].revents != 0 else { continue }
            let count = Glibc.read(fd, buffer.baseAddress, capacity)
            if count < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                return finish(.disconnected(reason: "reading from \(path) failed: \(String(cString: strerror(errno)))"))
            }
            if count == 0 {
                if state.withLock({ $0.closeRequested }) { return finish(.disconnected(reason: "the client closed the connection")) }
                if !sawGreeting && !firstBytes.isEmpty {
                    return finish(.notQMP(path: path, received: String(decoding: firstBytes, as: UTF8.self)))
                }
                do {
                    try decoder.finish()
                    return finish(
                        .disconnected(reason: sawGreeting ? "QEMU closed the connection" : "\(path) closed the connection before greeting"))
                } catch let error as QMPError {
                    return finish(error)
                } catch {
                    return finish(.disconnected(reason: "\(error)"))
                }
            }
            let chunk = UnsafeRawBufferPointer(rebasing: buffer[0..<count])
            if !sawGreeting && firstBytes.count < 512 { firstBytes.append(contentsOf: chunk.prefix(512 - firstBytes.count)) }
            do {
                try decoder.feed(chunk) { message, text in
                    if sawGreeting {
                        dispatch(message, text: text)
                    } else {
                        guard let greeting = QMPGreeting(message: message) else {
                            throw QMPError.notQMP(path: path, received: String(decoding: text, as: UTF8.self))
                        }
                        sawGreeting = true
                        greeted(greeting)
                    }
                }
            } catch let error as QMPError {
                if !sawGreeting, case .notQMP = error { return finish(error) }
                if !sawGreeting { return finish(.notQMP(path: path, received: String(decoding: firstBytes, as: UTF8.self))) }
                return finish(error)
            } catch {
                return finish(.protocolViolation("\(error)"))
            }
        }
    }

    /// Fails overdue commands; returns the poll timeout in milliseconds (-1: none), or nil to stop.
    private func checkDeadlines() -> Int32? {
        let now = monotonicNanoseconds()
        var expired: [Pending] = []
        var greetingExpired = false
        let timeout: Int32? = state.withLock { state in
            if state.closeRequested || state.failure != nil { return nil }
            if now >= state.armed {
                var earliest = UInt64.max
                for (id, pending) in state.pending {
                    if pending.deadline <= now {
                        expired.append(pending)
                        state.pending[id] = nil
                    } else {
                        earliest = min(earliest, pending.deadline)
                    }
                }
                if state.greeting == nil {
                    if state.greetingDeadline <= now { greetingExpired = true } else { earliest = min(earliest, state.greetingDeadline) }
                }
                state.armed = earliest
            }
            if state.armed == .max { return -1 }
            return Int32(clamping: (state.armed - now + 999_999) / 1_000_000)
        }
        for pending in expired {
            pending.continuation.resume(throwing: QMPError.timeout(command: pending.command, seconds: pending.seconds))
        }
        if greetingExpired {
            let seconds = state.withLock { $0.greetingSeconds }
            finish(.greetingTimeout(path: path, seconds: seconds))
            return nil
        }
        guard let timeout else {
            finish(.disconnected(reason: "the client closed the connection"))
            return nil
        }
        return timeout
    }

    private func greeted(_ greeting: QMPGreeting) {
        let waiter = state.withLock { state in
            state.greeting = greeting
            defer { state.greetingWaiter = nil }
            return state.greetingWaiter
        }
        waiter?.resume(returning: greeting)
    }

    private func dispatch(_ message: JSONDocument, text: UnsafeRawBufferPointer) {
        guard let root = message.object else { return }
        var member: OpaquePointer?
        if json_object_object_get_ex(root, "event", &member) != 0 {
            guard let member, json_object_is_type(member, json_type_string) != 0 else { return }
            eventSink.yield(QMPEvent(message: message, name: JSONC.string(member), json: String(decoding: text, as: UTF8.self)))
            return
        }
        var result: Result<JSONDocument, any Error> = .success(message)
        if json_object_object_get_ex(root, "error", &member) != 0 {
            let error = message["error"]
            result = .failure(
                QMPError.commandFailed(
                    command: "", errorClass: error?["class"]?.string ?? "GenericError",
                    description: error?["desc"]?.string ?? "(no description)"))
        } else if json_object_object_get_ex(root, "return", &member) == 0 {
            return  // Neither event nor reply: a newer QEMU's extension; nothing waits for it.
        }
        var idObject: OpaquePointer?
        let pending: Pending? = state.withLock { state in
            if json_object_object_get_ex(root, "id", &idObject) != 0 {
                // Unknown ids (a reply that arrives after its command timed out) are dropped.
                guard let idObject, json_object_is_type(idObject, json_type_int) != 0 else { return nil }
                return state.pending.removeValue(forKey: json_object_get_int64(idObject))
            }
            // No id: QEMU could not parse a command. It answers commands in order, so the oldest waiting one is it.
            guard let oldest = state.pending.keys.min() else { return nil }
            return state.pending.removeValue(forKey: oldest)
        }
        guard let pending else { return }
        if case .failure(QMPError.commandFailed(_, let errorClass, let description)) = result {
            result = .failure(QMPError.commandFailed(command: pending.command, errorClass: errorClass, description: description))
        }
        pending.continuation.resume(with: result)
    }

    /// Ends the connection with `error`: every pending command and a waiting connect fail with it at once.
    private func finish(_ error: QMPError) {
        let (pending, waiter) = state.withLock { state in
            if state.failure == nil { state.failure = error }
            defer {
                state.pending = [:]
                state.greetingWaiter = nil
            }
            return (Array(state.pending.values), state.greetingWaiter)
        }
        writer.withLock { writer in
            writer.closed = true
            _ = shutdown(fd, Int32(SHUT_RDWR))
            _ = Glibc.close(fd)
        }
        _ = Glibc.close(wakeRead)
        _ = Glibc.close(wakeWrite)
        for item in pending { item.continuation.resume(throwing: error) }
        waiter?.resume(throwing: error)
        eventSink.finish()
    }
}

extension Duration {
    var nanoseconds: UInt64 {
        let parts = components
        guard parts.seconds >= 0 else { return 0 }
        return UInt64(parts.seconds) &* 1_000_000_000 &+ UInt64(parts.attoseconds / 1_000_000_000)
    }
}

func monotonicNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) &* 1_000_000_000 &+ UInt64(now.tv_nsec)
}
