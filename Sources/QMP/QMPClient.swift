// QMPClient: one QMP session on a unix socket: greeting, negotiation, id-matched commands, events.
import CShims
import FoundationEssentials
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A connected QMP session. Commands may be issued concurrently from any task; each gets a unique
/// id and its reply is matched by that id. A dedicated reader thread waits for the socket,
/// decodes with json-c and resumes the waiting task directly. Events are buffered from the moment
/// of connection.
///
/// For the fastest round trips, run the conversation on the connection's own thread:
/// `try await withTaskExecutorPreference(client.executor) { ... }` (or `client.withExecutor`).
/// A reply then resumes its task on the thread that read it, without waking a second thread.
public final class QMPClient: Sendable {
    public let greeting: QMPGreeting
    /// Events in arrival order; the stream finishes when the connection ends. One consumer.
    public let events: AsyncStream<QMPEvent>
    public let socketPath: String
    public let timeouts: QMPTimeouts
    private let connection: QMPConnection
    /// Each command's limit from `timeouts`, looked up once (prefix matching costs more than a hash).
    private let timeoutCache = Mutex<[String: Duration]>([:])

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
        let (connection, events) = try open(socketPath: socketPath, timeout: timeout)
        // The hand-shake runs on the connection's thread: one wake-up per message instead of two.
        return try await withTaskExecutorPreference(connection.ioThread) {
            try await handshake(connection, events: events, negotiate: negotiate, timeout: timeout, timeouts: timeouts)
        }
    }

    /// Connects like `connect`, runs `body` with the whole session (hand-shake included) on the
    /// connection's own thread, and closes the session. For one-shot conversations such as
    /// `sevvm status`: no reply along the way wakes a second thread.
    public static func withSession<T>(
        socketPath: String, timeout: Duration = .seconds(5), timeouts: QMPTimeouts = .default,
        _ body: (QMPClient) async throws -> T
    ) async throws -> T {
        let (connection, events) = try open(socketPath: socketPath, timeout: timeout)
        return try await withTaskExecutorPreference(connection.ioThread) {
            let client = try await handshake(connection, events: events, negotiate: true, timeout: timeout, timeouts: timeouts)
            defer { client.close() }
            return try await body(client)
        }
    }

    private static func open(socketPath: String, timeout: Duration) throws -> (QMPConnection, AsyncStream<QMPEvent>) {
        let fd = try openSocket(path: socketPath, timeout: timeout)
        let (events, eventSink) = AsyncStream.makeStream(of: QMPEvent.self, bufferingPolicy: .bufferingNewest(65_536))
        let connection = QMPConnection(fd: fd, path: socketPath, greetingTimeout: timeout, events: eventSink)
        connection.start()
        return (connection, events)
    }

    private static func handshake(
        _ connection: QMPConnection, events: AsyncStream<QMPEvent>, negotiate: Bool, timeout: Duration, timeouts: QMPTimeouts
    ) async throws -> QMPClient {
        let greeting: QMPGreeting
        do {
            greeting = try await connection.waitForGreeting()
        } catch {
            connection.close()
            throw error
        }
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

    /// The connection's own thread as a task executor: tasks that prefer it run right where their
    /// replies are read. Keep CPU-heavy or blocking work off it; it also reads the socket.
    public var executor: any TaskExecutor { connection.ioThread }

    /// Runs `body` with this connection's thread as the task's preferred executor.
    public func withExecutor<T, Failure: Error>(_ body: () async throws(Failure) -> T) async throws(Failure) -> T {
        try await withTaskExecutorPreference(connection.ioThread, operation: body)
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
        try await connection.send(command, arguments: arguments, timeout: timeout ?? limit(for: command))
    }

    private func limit(for command: String) -> Duration {
        if let known = timeoutCache.withLock({ $0[command] }) { return known }
        let limit = timeouts.timeout(for: command)
        timeoutCache.withLock { cache in if cache.count < 512 { cache[command] = limit } }
        return limit
    }

    /// Ends the session: pending commands fail with `disconnected`, the event stream finishes.
    public func close() { connection.close() }

    /// False once the connection ended (closed by either side or broken).
    public var isConnected: Bool { connection.failure == nil }

    /// Why the connection ended, or nil while it is up.
    public var disconnectReason: QMPError? { connection.failure }

    // MARK: socket set-up

    static func openSocket(path: String, timeout: Duration) throws -> Int32 {
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
