// A unix-socket server speaking real QMP (greeting, negotiation, ids) that replays captured answers.
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Serves one client at a time on its own thread, like a QEMU monitor: greeting first, every command
/// but qmp_capabilities refused until negotiation, replies echo the command's id, and each command
/// named in `replies` gets its captured reply object ({"return": ...} or {"error": ...}).
final class ReplayQMPServer: @unchecked Sendable {
    let socketPath: String
    private let folder: TemporaryFolder
    private let listener: Int32
    private let replies: [String: [String: Any]]
    private let lock = NSLock()
    private var received: [String] = []
    private var thread: Thread?

    /// Commands clients sent, in order (qmp_capabilities included).
    var commands: [String] { lock.withLock { received } }

    init(replies: [String: [String: Any]]) throws {
        self.replies = replies
        folder = try TemporaryFolder("qmp")
        socketPath = folder.path + "/qmp.sock"
        listener = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let pathBytes = Array(socketPath.utf8)
        try #require(pathBytes.count < MemoryLayout.size(ofValue: address.sun_path), "socket path too long for a test: \(socketPath)")
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: pathBytes)
            raw[pathBytes.count] = 0
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        try #require(bound == 0 && listen(listener, 4) == 0, "bind/listen failed: \(String(cString: strerror(errno)))")
        let thread = Thread { [self] in serve() }
        self.thread = thread
        thread.start()
    }

    /// The reply captured in a libvirt .replies-style file: the second JSON block (after the command).
    static func capturedReply(_ relative: String) throws -> [String: Any] {
        let blocks = try Fixtures.text(relative).components(separatedBy: "\n\n").filter {
            !$0.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty
        }
        let reply = try #require(blocks.dropFirst().first)
        var object = try #require(JSONSerialization.jsonObject(with: Data(reply.utf8)) as? [String: Any])
        object["id"] = nil
        return object
    }

    private var stopped = false

    /// Stops accepting; idempotent (deinit calls it too).
    func stop() {
        let first = lock.withLock {
            defer { stopped = true }
            return !stopped
        }
        guard first else { return }
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }

    deinit { stop() }

    private func serve() {
        while true {
            let client = accept(listener, nil, nil)
            guard client >= 0 else { return }
            session(client)
            close(client)
        }
    }

    private func session(_ fd: Int32) {
        send(fd, ["QMP": ["version": ["qemu": ["major": 9, "minor": 2, "micro": 0], "package": "replay"], "capabilities": ["oob"]]])
        var negotiated = false
        var pending = Data()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            guard n > 0 else { return }
            pending.append(contentsOf: buffer[0..<n])
            // Like QEMU's streaming JSON parser: a command is complete when its braces balance
            // (clients need not end it with a newline).
            while let end = Self.endOfObject(in: pending) {
                let line = pending[pending.startIndex..<end]
                pending.removeSubrange(pending.startIndex..<end)
                guard let command = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any],
                    let name = command["execute"] as? String
                else { continue }
                lock.withLock { received.append(name) }
                var reply: [String: Any]
                if name == "qmp_capabilities" {
                    negotiated = true
                    reply = ["return": [String: Any]()]
                } else if !negotiated {
                    reply = error("CommandNotFound", "Expecting capabilities negotiation with 'qmp_capabilities'")
                } else if let captured = replies[name] {
                    reply = captured
                } else {
                    reply = error("CommandNotFound", "The command \(name) has not been found")
                }
                if let id = command["id"] { reply["id"] = id }
                send(fd, reply)
            }
        }
    }

    /// The index just past the first complete top-level JSON object in `data`, or nil.
    static func endOfObject(in data: Data) -> Data.Index? {
        var depth = 0
        var inString = false
        var escaped = false
        for index in data.indices {
            let byte = data[index]
            if inString {
                if escaped {
                    escaped = false
                } else if byte == UInt8(ascii: "\\") {
                    escaped = true
                } else if byte == UInt8(ascii: "\"") {
                    inString = false
                }
                continue
            }
            switch byte {
            case UInt8(ascii: "\""): inString = true
            case UInt8(ascii: "{"): depth += 1
            case UInt8(ascii: "}"):
                depth -= 1
                if depth == 0 { return data.index(after: index) }
            default: break
            }
        }
        return nil
    }

    private func error(_ errorClass: String, _ description: String) -> [String: Any] {
        ["error": ["class": errorClass, "desc": description]]
    }

    private func send(_ fd: Int32, _ object: [String: Any]) {
        guard var data = try? JSONSerialization.data(withJSONObject: object) else { return }
        data.append(contentsOf: Array("\r\n".utf8))
        _ = data.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    }
}
