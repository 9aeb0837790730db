// QMPConnection: the socket, the table of waiting commands, the reader thread and the timeout timer.
import CJSONC
import Dispatch
import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// One connection's machinery. A dedicated thread blocks in read(2), decodes with json-c and
/// resumes the waiting task directly; writes go straight to send(2) under a lock from the calling
/// task. Timeouts live on a dispatch timer that is only re-armed when a command needs an earlier
/// check than the one planned, so steady traffic costs no timer work. Nothing polls or spins.
final class QMPConnection: @unchecked Sendable {
    let path: String
    private let fd: Int32
    private let eventSink: AsyncStream<QMPEvent>.Continuation
    private let state: Mutex<State>
    /// Serializes writes and guards the descriptor's lifetime (closed only under this lock).
    private let writer = Mutex(WriterState())
    private let nextID = Atomic<Int64>(0)
    private let timer: any DispatchSourceTimer

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
        /// When the timer fires next (monotonic ns): never after the earliest live deadline.
        var armed: UInt64
        /// Set once; every later command fails with it.
        var failure: QMPError?
        var closeRequested = false
    }

    private struct WriterState { var closed = false }

    init(fd: Int32, path: String, greetingTimeout: Duration, events: AsyncStream<QMPEvent>.Continuation) {
        self.fd = fd
        self.path = path
        eventSink = events
        let deadline = monotonicNanoseconds() &+ greetingTimeout.nanoseconds
        state = Mutex(State(greetingDeadline: deadline, greetingSeconds: greetingTimeout.seconds, armed: deadline))
        timer = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "qmp-timeouts"))
    }

    var failure: QMPError? { state.withLock { $0.failure } }

    func start() {
        timer.setEventHandler { [weak self] in self?.checkDeadlines() }
        state.withLock { schedule(at: $0.armed) }
        timer.activate()
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
        // The reader's read(2) then returns end of file; it fails what is pending and cleans up.
        shutdownSocket()
    }

    private func shutdownSocket() {
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
        let flags = Int32(JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)
        guard let text = json_object_to_json_string_length(message, flags, &length) else {
            throw QMPError.protocolViolation("json-c could not serialize '\(command)'")
        }
        let seconds = timeout.seconds
        let deadline = monotonicNanoseconds() &+ timeout.nanoseconds

        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<JSONDocument, any Error>) in
                let failure = state.withLock { state -> QMPError? in
                    if let failure = state.failure { return failure }
                    state.pending[id] = Pending(command: command, continuation: continuation, deadline: deadline, seconds: seconds)
                    if deadline < state.armed {
                        // Rare (deadlines grow): re-armed under the lock so the timer cannot overwrite it.
                        state.armed = deadline
                        schedule(at: deadline)
                    }
                    return nil
                }
                if let failure {
                    continuation.resume(throwing: failure)
                    return
                }
                if let error = write(UnsafeRawPointer(text), length) {
                    // A failed or partial write leaves the stream unusable: end the connection with this verdict.
                    state.withLock { state in if state.failure == nil { state.failure = error } }
                    shutdownSocket()
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

    /// Writes the whole buffer; returns the error that ends the connection, if any.
    private func write(_ bytes: UnsafeRawPointer, _ count: Int) -> QMPError? {
        writer.withLock { writer -> QMPError? in
            if writer.closed { return .disconnected(reason: "the connection is closed") }
            var offset = 0
            while offset < count {
                let written = Glibc.send(fd, bytes + offset, count - offset, Int32(MSG_NOSIGNAL))
                if written < 0 {
                    let code = errno
                    if code == EINTR { continue }
                    if code == EPIPE || code == ECONNRESET { return .disconnected(reason: "QEMU closed the connection") }
                    if code == EAGAIN { return .disconnected(reason: "QEMU stopped reading commands (send timed out)") }
                    return .io(operation: "send to \(path)", errno: code)
                }
                offset += written
            }
            return nil
        }
    }

    // MARK: timeouts

    private func schedule(at deadline: UInt64) {
        guard deadline != .max else { return }
        let now = monotonicNanoseconds()
        let delay = deadline > now ? deadline - now : 0
        timer.schedule(deadline: .now() + .nanoseconds(Int(min(delay, UInt64(Int.max)))), leeway: .milliseconds(1))
    }

    /// Runs on the timer: fails overdue commands (or an overdue greeting) and plans the next check.
    private func checkDeadlines() {
        let now = monotonicNanoseconds()
        var expired: [Pending] = []
        var greetingTimeout: (QMPError, CheckedContinuation<QMPGreeting, any Error>?)?
        state.withLock { state in
            if state.failure != nil { return }
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
                if state.greetingDeadline <= now {
                    let error = QMPError.greetingTimeout(path: path, seconds: state.greetingSeconds)
                    state.failure = error
                    greetingTimeout = (error, state.greetingWaiter)
                    state.greetingWaiter = nil
                    return
                }
                earliest = min(earliest, state.greetingDeadline)
            }
            state.armed = earliest
            schedule(at: earliest)
        }
        for pending in expired {
            pending.continuation.resume(throwing: QMPError.timeout(command: pending.command, seconds: pending.seconds))
        }
        if let (error, waiter) = greetingTimeout {
            waiter?.resume(throwing: error)
            shutdownSocket()  // The reader then sees end of file and cleans up.
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

        while true {
            let count = Glibc.read(fd, buffer.baseAddress, capacity)
            if count < 0 {
                let code = errno
                if code == EINTR { continue }
                return finish(.disconnected(reason: "reading from \(path) failed: \(String(cString: strerror(code)))"))
            }
            if count == 0 {
                if state.withLock({ $0.closeRequested }) { return finish(.disconnected(reason: "the client closed the connection")) }
                if !sawGreeting && !firstBytes.isEmpty {
                    return finish(.notQMP(path: path, received: String(decoding: firstBytes, as: UTF8.self)))
                }
                do {
                    try decoder.finish()
                    let reason = sawGreeting ? "QEMU closed the connection" : "\(path) closed the connection before greeting"
                    return finish(.disconnected(reason: reason))
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

    /// Ends the connection (on the reader thread): every pending command and a waiting connect fail
    /// at once, with the first verdict reached (a greeting timeout decided by the timer wins).
    private func finish(_ error: QMPError) {
        let (verdict, pending, waiter) = state.withLock { state in
            let verdict = state.failure ?? error
            state.failure = verdict
            defer {
                state.pending = [:]
                state.greetingWaiter = nil
            }
            return (verdict, Array(state.pending.values), state.greetingWaiter)
        }
        timer.cancel()
        writer.withLock { writer in
            writer.closed = true
            _ = shutdown(fd, Int32(SHUT_RDWR))
            _ = Glibc.close(fd)
        }
        for item in pending { item.continuation.resume(throwing: verdict) }
        waiter?.resume(throwing: verdict)
        eventSink.finish()
    }
}
