// QMPError: every way talking to a QMP socket can fail, rendered as advice a person can act on.
#if canImport(Glibc)
    import Glibc
#endif

public enum QMPError: Error, CustomStringConvertible, Equatable {
    case socketNotFound(path: String)
    case connectionRefused(path: String)
    case permissionDenied(path: String)
    /// The socket accepted the connection but no greeting came: QEMU serves one client per monitor.
    case greetingTimeout(path: String, seconds: Double)
    case notQMP(path: String, received: String)
    case commandFailed(command: String, errorClass: String, description: String)
    case timeout(command: String, seconds: Double)
    case disconnected(reason: String)
    case invalidJSON(offset: Int, reason: String)
    case protocolViolation(String)
    case io(operation: String, errno: Int32)

    public var description: String {
        switch self {
        case .socketNotFound(let path):
            return "no QMP socket at \(path): is the VM running, and is this the socket given to QEMU's -qmp option?"
        case .connectionRefused(let path):
            return "nothing is listening on \(path) (connection refused): the socket is stale, QEMU has probably exited"
        case .permissionDenied(let path):
            return "permission denied connecting to \(path): run as the user that started QEMU, or fix the socket's permissions"
        case .greetingTimeout(let path, let seconds):
            return "\(path) accepted the connection but sent no QMP greeting within \(formatSeconds(seconds)): "
                + "another client may hold the monitor (QEMU serves one QMP client at a time); close it or use another QMP socket"
        case .notQMP(let path, let received):
            return "\(path) does not speak QMP (received \(quoted(received))): "
                + "is it a human monitor (-monitor) or a serial console? Point to the socket of QEMU's -qmp option"
        case .commandFailed(let command, let errorClass, let description):
            return "QMP command '\(command)' failed: \(errorClass): \(description)"
        case .timeout(let command, let seconds):
            return "QMP command '\(command)' got no reply within \(formatSeconds(seconds)): QEMU may be busy or hung; "
                + "retry with a longer --timeout"
        case .disconnected(let reason):
            return "QMP connection lost: \(reason)"
        case .invalidJSON(let offset, let reason):
            return "invalid JSON at byte \(offset): \(reason)"
        case .protocolViolation(let what):
            return "QMP protocol violation: \(what)"
        case .io(let operation, let code):
            return "\(operation) failed: \(String(cString: strerror(code))) (errno \(code))"
        }
    }
}

extension QMPError {
    /// A command's failure from the `error` member of QEMU's reply (`class` and `desc`).
    static func commandFailed(command: String, error: JSONDocument?) -> QMPError {
        .commandFailed(
            command: command, errorClass: error?["class"]?.string ?? "GenericError",
            description: error?["desc"]?.string ?? "(no description)")
    }
}

private func formatSeconds(_ seconds: Double) -> String {
    seconds == seconds.rounded() ? "\(Int(seconds)) s" : "\(seconds) s"
}

/// Shows what a non-QMP peer sent, with control characters escaped, cut to a readable length.
private func quoted(_ text: String) -> String {
    var out = ""
    for scalar in text.unicodeScalars.prefix(120) {
        switch scalar {
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case _ where scalar.value < 0x20 || scalar.value == 0x7F: out += "\\u{\(String(scalar.value, radix: 16))}"
        default: out.unicodeScalars.append(scalar)
        }
    }
    if text.unicodeScalars.count > 120 { out += "..." }
    return "\"\(out)\""
}
