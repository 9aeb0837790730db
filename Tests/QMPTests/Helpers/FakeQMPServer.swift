// FakeQMPServer: an in-process unix-socket peer on its own thread, for what real QEMU won't do on demand.
import CShims
import Foundation
import QMP

#if canImport(Glibc)
    import Glibc
#endif

/// The accepted connection as the script sees it.
final class FakePeer: @unchecked Sendable {
    let fd: Int32
    private let decoder = QMPStreamDecoder()
    private var queued: [JSONDocument] = []

    init(fd: Int32) { self.fd = fd }

    func send(_ text: String) { send(Array(text.utf8)) }

    func send(_ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if written <= 0 { return }
            offset += written
        }
    }

    func greet() {
        send(#"{"QMP": {"version": {"qemu": {"micro": 2, "minor": 0, "major": 10}, "package": "fake"}, "capabilities": ["oob"]}}"# + "\r\n")
    }

    /// The next command the client sent, or nil when it closed the connection.
    func receive() -> JSONDocument? {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while queued.isEmpty {
            let count = Glibc.read(fd, &buffer, buffer.count)
            guard count > 0, let messages = try? decoder.feed(Array(buffer[0..<count])) else { return nil }
            queued += messages
        }
        return queued.removeFirst()
    }

    /// Answers `qmp_capabilities` like QEMU.
    func negotiate() {
        guard let command = receive() else { return }
        reply(to: command, #"{"return": {}}"#)
    }

    /// Sends `body` (a reply object's text without the id) with the command's id added, like QEMU:
    /// a command sent without an id gets a reply without one.
    func reply(to command: JSONDocument, _ body: String) {
        guard let id = command["id"]?.serialized() else { return send(body + "\r\n") }
        send(String(body.dropLast()) + #", "id": \#(id)}"# + "\r\n")
    }

    /// Blocks until the client closes its end.
    func waitForClose() {
        var byte: UInt8 = 0
        while Glibc.read(fd, &byte, 1) > 0 {}
    }
}

/// Listens on a fresh socket, accepts one client and runs `script` with it on a dedicated thread.
final class FakeQMPServer: @unchecked Sendable {
    let directory: String
    let path: String
    private let listenFD: Int32
    private let done = DispatchSemaphore(value: 0)

    init(path: String? = nil, script: @escaping @Sendable (FakePeer) -> Void) throws {
        directory = try makeTemporaryDirectory()
        self.path = path ?? directory + "/fake.sock"
        listenFD = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard listenFD >= 0, sevvm_unix_bind(listenFD, self.path) == 0, listen(listenFD, 4) == 0 else {
            throw TestFailure("fake server cannot listen on \(self.path): errno \(errno)")
        }
        let listenFD = listenFD
        let done = done
        let thread = Thread {
            let fd = accept(listenFD, nil, nil)
            if fd >= 0 {
                script(FakePeer(fd: fd))
                Glibc.close(fd)
            }
            done.signal()
        }
        thread.start()
    }

    /// A server that greets, negotiates, answers one command with `answer(command)` (a reply
    /// object's text without the id) and waits for the client to leave.
    static func answeringOne(path: String? = nil, _ answer: @escaping @Sendable (JSONDocument) -> String) throws -> FakeQMPServer {
        try FakeQMPServer(path: path) { peer in
            peer.greet()
            peer.negotiate()
            guard let command = peer.receive() else { return }
            peer.reply(to: command, answer(command))
            peer.waitForClose()
        }
    }

    /// Stops listening, waits for the script to end and removes the folder.
    func stop() {
        stopKeepingFiles()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Stops listening and waits for the script, leaving the socket file behind (a stale socket).
    func stopKeepingFiles() {
        shutdown(listenFD, Int32(SHUT_RDWR))
        Glibc.close(listenFD)
        done.wait()
    }
}
