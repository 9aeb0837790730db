// QMPQuery, the thread-free one-shot session: against real QEMU and against a fake server's odd behaviour.
import Foundation
import QMP
import Testing

@Suite("QMPQuery: one-shot sessions on the calling thread")
struct QMPQueryTests {
    @Test("real QEMU: greeting, negotiation, a reply, a QMP error")
    func realQEMU() throws {
        guard TestQEMU.available else { return }
        let qemu = try TestQEMU()
        defer { qemu.stop() }
        try QMPQuery.withSession(socketPath: qemu.qmpPath) { session in
            #expect(session.greeting.version.major >= 7)
            let status = try session.execute("query-status")
            #expect(status["status"]?.string == "prelaunch")
            #expect(throws: QMPError.self) { try session.execute("no-such-command") }
            do {
                _ = try session.execute("no-such-command")
            } catch QMPError.commandFailed(let command, let errorClass, _) {
                #expect(command == "no-such-command")
                #expect(errorClass == "CommandNotFound")
            }
            // The session is still usable after an error.
            #expect(try session.execute("query-name").serialized().hasPrefix("{"))
        }
    }

    @Test("events before a reply are skipped; arguments are sent")
    func eventsSkipped() throws {
        let server = try FakeQMPServer { peer in
            peer.greet()
            peer.negotiate()
            guard let command = peer.receive() else { return }
            let name = command["arguments"]?["name"]?.string ?? "?"
            peer.send(#"{"timestamp": {"seconds": 1700000000, "microseconds": 1}, "event": "STOP"}"# + "\r\n")
            peer.send(#"{"timestamp": {"seconds": 1700000000, "microseconds": 2}, "event": "RESUME"}"# + "\r\n")
            peer.reply(to: command, #"{"return": {"echo": "\#(name)"}}"#)
            peer.waitForClose()
        }
        defer { server.stop() }
        let echo = try QMPQuery.withSession(socketPath: server.path) { session in
            try session.execute("echo", arguments: ["name": "web"])["echo"]?.string
        }
        #expect(echo == "web")
    }

    @Test("a silent server times out; a server that hangs up disconnects; a non-QMP peer is named")
    func failures() throws {
        let silent = try FakeQMPServer { peer in
            peer.greet()
            peer.negotiate()
            _ = peer.receive()
            peer.waitForClose()
        }
        defer { silent.stop() }
        #expect(throws: QMPError.timeout(command: "query-status", seconds: 0.3)) {
            try QMPQuery.withSession(socketPath: silent.path, timeout: .milliseconds(300)) { try $0.execute("query-status") }
        }

        let hangsUp = try FakeQMPServer { peer in
            peer.greet()
            peer.negotiate()
            _ = peer.receive()
        }
        defer { hangsUp.stop() }
        #expect(throws: QMPError.self) {
            try QMPQuery.withSession(socketPath: hangsUp.path) { try $0.execute("query-status") }
        }

        let notQMP = try FakeQMPServer { peer in
            peer.send("220 smtp.example ESMTP\r\n")
            peer.waitForClose()
        }
        defer { notQMP.stop() }
        do {
            try QMPQuery.withSession(socketPath: notQMP.path, timeout: .seconds(2)) { _ in }
            Issue.record("a non-QMP greeting was accepted")
        } catch QMPError.notQMP(let path, let received) {
            #expect(path == notQMP.path)
            #expect(received.contains("ESMTP"))
        }

        #expect(throws: QMPError.socketNotFound(path: "/nonexistent/qmp.sock")) {
            try QMPQuery.withSession(socketPath: "/nonexistent/qmp.sock") { _ in }
        }
    }
}
