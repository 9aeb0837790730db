// QMPConnection: the socket, the table of waiting commands, the reader thread and the timeout timer.
import CJSONC
import Dispatch
import FoundationEssentials
import Support
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// One connection's machinery. A dedicated thread waits for the socket, decodes with json-c and
/// resumes the waiting task directly (which then runs on that same thread when it prefers
/// `ioThread` as its executor); writes go straight to send(2) under a lock from the calling task.
/// Timeouts live on a dispatch timer that is only re-armed when a command needs an earlier check
/// than the one planned, so steady traffic costs no timer work. Nothing polls or spins.
final class QMPConnection: @unchecked Sendable {
    let path: String
    private let fd: Int32
    private let eventSink: AsyncStream<QMPEvent>.Continuation
    private let state: Mutex<State>
    /// Serializes writes and guards the descriptor's lifetime (closed only under this lock).
    private let writer = Mutex(WriterState())
    private let nextID = Atomic<Int64>(0)
    /// json-c's serialization of argument-less, id-less requests, by command name.
    private let plainRequests = Mutex<[String: [UInt8]]>([:])
    private let timer: any DispatchSourceTimer
    /// Reads the socket and runs the tasks that prefer this connection (see `QMPIOThread`).
    let ioThread = QMPIOThread()

    /// A command waiting for its reply. Its continuation is resumed exactly once, by whoever removes
    /// it from `pending` under the lock (reply, timeout, cancellation or disconnect), which is what
    /// makes the unchecked continuation safe.
    private struct Pending {
        var command: String
        /// False for the one command that may travel without an id (see `send`).
        var sendsID: Bool
        var continuation: UnsafeContinuation<JSONDocument, any Error>
        var deadline: UInt64
        var seconds: Double
    }

    private struct State {
        var pending: [Int64: Pending] = [:]
        /// The pending command sent without an id, if any (at most one at a time).
        var idless: Int64?
        /// Replies still owed to id-less commands that timed out or were cancelled: the next
        /// id-less replies are theirs and are dropped; until they arrive every command gets an id.
        var strayReplies = 0
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
        // A thread of its own: the reader blocks in read(2) and must not hold a pool thread.
        if !startDetachedThread(name: "qmp-reader", { [self] in readLoop() }) {
            DispatchQueue.global().async { [self] in readLoop() }
        }
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

    /// Sends `command` and waits for its reply.
    ///
    /// The id is left out when nothing else is outstanding. Why: QEMU reads its QMP socket one
    /// byte per main-loop turn, so QEMU's cost for a small command grows with every byte, and
    /// `,"id":12345` makes `query-status` about a third slower in QEMU. In-band replies come back
    /// in order, so with one command outstanding and no reply owed to an abandoned one, a reply
    /// without an id can only be that command's. Overlapping commands always carry ids.
    func send(_ command: String, arguments: JSONValue?, timeout: Duration) async throws -> JSONDocument {
        try Task.checkCancellation()
        let key = nextID.wrappingAdd(1, ordering: .relaxed).newValue
        let seconds = timeout.seconds
        let deadline = monotonicNanoseconds() &+ timeout.nanoseconds

        return try await withTaskCancellationHandler {
            try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<JSONDocument, any Error>) in
                let decision = state.withLock { state -> Result<Bool, QMPError> in
                    if let failure = state.failure { return .failure(failure) }
                    let sendsID = !state.pending.isEmpty || state.strayReplies > 0
                    state.pending[key] = Pending(
                        command: command, sendsID: sendsID, continuation: continuation, deadline: deadline, seconds: seconds)
                    if !sendsID { state.idless = key }
                    if deadline < state.armed {
                        // Rare (deadlines grow): re-armed under the lock so the timer cannot overwrite it.
                        state.armed = deadline
                        schedule(at: deadline)
                    }
                    return .success(sendsID)
                }
                let sendsID: Bool
                switch decision {
                case .failure(let failure):
                    continuation.resume(throwing: failure)
                    return
                case .success(let value): sendsID = value
                }
                // Without id and arguments a request is a function of the command name alone.
                let plain = !sendsID && arguments == nil
                if plain, let text = plainRequests.withLock({ $0[command] }) {
                    // The same bytes json-c produced the first time: steady polling skips the allocations.
                    writeRequest(key: key, text.withUnsafeBytes { raw in raw.baseAddress.flatMap { write($0, raw.count) } })
                    return
                }
                JSONC.withRequest(command, arguments: arguments, id: sendsID ? key : nil) { text in
                    guard let text, let base = text.baseAddress else {
                        abandon(key: key, written: false, with: QMPError.protocolViolation("json-c could not serialize '\(command)'"))
                        return
                    }
                    if plain {
                        let bytes = [UInt8](text)
                        plainRequests.withLock { cache in if cache.count < 256 { cache[command] = bytes } }
                    }
                    writeRequest(key: key, write(base, text.count))
                }
            }
        } onCancel: {
            abandon(key: key, written: true, with: CancellationError())
        }
    }

    /// Settles a request's write: a failed or partial write leaves the stream unusable, so it ends
    /// the connection with that verdict.
    private func writeRequest(key: Int64, _ error: QMPError?) {
        guard let error else { return }
        state.withLock { state in if state.failure == nil { state.failure = error } }
        shutdownSocket()
        abandon(key: key, written: false, with: error)
    }

    /// Fails a pending command that will not get its reply. When its request may have reached
    /// QEMU without an id, the reply QEMU still owes is remembered so it is not taken for another's.
    private func abandon(key: Int64, written: Bool, with error: any Error) {
        state.withLock { state -> Pending? in
            guard let pending = state.pending.removeValue(forKey: key) else { return nil }
            if state.idless == key {
                state.idless = nil
                if written { state.strayReplies += 1 }
            }
            return pending
        }?.continuation.resume(throwing: error)
    }

    /// Writes the whole buffer; returns the error that ends the connection, if any.
    private func write(_ bytes: UnsafeRawPointer, _ count: Int) -> QMPError? {
        writer.withLock { writer -> QMPError? in
            if writer.closed { return .disconnected(reason: "the connection is closed") }
            switch DescriptorIO.writeAll(UnsafeRawBufferPointer(start: bytes, count: count), to: fd) {
            case 0: return nil
            case EPIPE, ECONNRESET: return .disconnected(reason: "QEMU closed the connection")
            case EAGAIN: return .disconnected(reason: "QEMU stopped reading commands (send timed out)")
            case let code: return .io(operation: "send to \(path)", errno: code)
            }
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
                    if state.idless == id {
                        state.idless = nil
                        state.strayReplies += 1
                    }
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

        ioThread.run(fd: fd) { () -> Bool in
            let count = Glibc.read(fd, buffer.baseAddress, capacity)
            if count < 0 {
                let code = errno
                if code == EINTR || code == EAGAIN { return true }
                finish(.disconnected(reason: "reading from \(path) failed: \(String(cString: strerror(code)))"))
                return false
            }
            if count == 0 {
                if state.withLock({ $0.closeRequested }) {
                    finish(.disconnected(reason: "the client closed the connection"))
                } else if !sawGreeting && !firstBytes.isEmpty {
                    finish(.notQMP(path: path, received: String(decoding: firstBytes, as: UTF8.self)))
                } else {
                    do {
                        try decoder.finish()
                        finish(
                            .disconnected(
                                reason: sawGreeting ? "QEMU closed the connection" : "\(path) closed the connection before greeting"))
                    } catch let error as QMPError {
                        finish(error)
                    } catch {
                        finish(.disconnected(reason: "\(error)"))
                    }
                }
                return false
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
                return true
            } catch let error as QMPError {
                if sawGreeting {
                    finish(error)
                } else if case .notQMP = error {
                    finish(error)
                } else {
                    finish(.notQMP(path: path, received: String(decoding: firstBytes, as: UTF8.self)))
                }
            } catch {
                finish(.protocolViolation("\(error)"))
            }
            return false
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
            result = .failure(QMPError.commandFailed(command: "", error: message["error"]))
        } else if json_object_object_get_ex(root, "return", &member) == 0 {
            return  // Neither event nor reply: a newer QEMU's extension; nothing waits for it.
        }
        var idObject: OpaquePointer?
        let pending: Pending? = state.withLock { state in
            if json_object_object_get_ex(root, "id", &idObject) != 0 {
                // Unknown ids (a reply that arrives after its command timed out) are dropped.
                guard let idObject, json_object_is_type(idObject, json_type_int) != 0 else { return nil }
                let key = json_object_get_int64(idObject)
                guard state.pending[key]?.sendsID == true else { return nil }
                return state.pending.removeValue(forKey: key)
            }
            // No id: the reply of the command sent without one, else one owed to an abandoned
            // command (dropped), else QEMU could not parse a command: it answers in order, so the
            // oldest waiting one is it.
            if let key = state.idless {
                state.idless = nil
                return state.pending.removeValue(forKey: key)
            }
            if state.strayReplies > 0 {
                state.strayReplies -= 1
                return nil
            }
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
                state.idless = nil
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
