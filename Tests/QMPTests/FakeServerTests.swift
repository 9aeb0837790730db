// The client against an in-process fake server: framing, unknown ids, bad peers, drops and timeouts.
import Foundation
import QMP
import Testing

@Suite("QMP client against a fake server")
struct FakeServerTests {
    @Test("a reply written one byte at a time is reassembled")
    func byteByByte() async throws {
        let server = try FakeQMPServer { peer in
            for byte in Array(
                #"{"QMP": {"version": {"qemu": {"micro": 1, "minor": 2, "major": 9}, "package": ""}, "capabilities": []}}"#.utf8) + [
                    13, 10,
                ]
            {
                peer.send([byte])
            }
            peer.negotiate()
            guard let command = peer.receive() else { return }
            let reply = Array(#"{"return": {"status": "running", "running": true}, "id": \#(command["id"]?.int ?? -1)}"#.utf8) + [13, 10]
            for byte in reply { peer.send([byte]) }
            peer.waitForClose()
        }
        defer { server.stop() }
        let client = try await QMPClient.connect(socketPath: server.path)
        #expect(client.greeting.version == QEMUVersion(major: 9, minor: 2, micro: 1))
        let status = try await client.execute("query-status")
        #expect(status["running"]?.bool == true)
        client.close()
    }

    @Test("replies with unknown ids are ignored; events in between are delivered")
    func unknownIdIgnored() async throws {
        let server = try FakeQMPServer { peer in
            peer.greet()
            peer.negotiate()
            guard let command = peer.receive() else { return }
            peer.send(#"{"return": {"wrong": true}, "id": 987654}"# + "\r\n" + #"{"return": {}, "id": "text"}"# + "\r\n")
            peer.send(#"{"timestamp": {"seconds": 1700000000, "microseconds": 500000}, "event": "POWERDOWN"}"# + "\r\n")
            peer.reply(to: command, #"{"return": {"right": true}}"#)
            peer.waitForClose()
        }
        defer { server.stop() }
        let client = try await QMPClient.connect(socketPath: server.path)
        defer { client.close() }
        let result = try await client.execute("query-status")
        #expect(result["right"]?.bool == true)
        var iterator = client.events.makeAsyncIterator()
        let event = try #require(await iterator.next())
        #expect(event.name == "POWERDOWN")
        #expect(event.timestamp == Date(timeIntervalSince1970: 1_700_000_000.5))
        #expect(event.json == #"{"timestamp": {"seconds": 1700000000, "microseconds": 500000}, "event": "POWERDOWN"}"#)
    }

    @Test("an error reply without an id fails the oldest waiting command")
    func replyWithoutId() async throws {
        let server = try FakeQMPServer { peer in
            peer.greet()
            peer.negotiate()
            guard peer.receive() != nil else { return }
            peer.send(#"{"error": {"class": "GenericError", "desc": "JSON parse error, invalid keyword"}}"# + "\r\n")
            guard let second = peer.receive() else { return }
            peer.reply(to: second, #"{"return": 5}"#)
            peer.waitForClose()
        }
        defer { server.stop() }
        let client = try await QMPClient.connect(socketPath: server.path)
        defer { client.close() }
        await #expect(
            throws: QMPError.commandFailed(command: "first", errorClass: "GenericError", description: "JSON parse error, invalid keyword")
        ) {
            try await client.execute("first")
        }
        #expect(try await client.execute("second").int == 5)
    }

    @Test("a server closing mid-reply fails every pending command at once")
    func closeMidReply() async throws {
        let server = try FakeQMPServer { peer in
            peer.greet()
            peer.negotiate()
            for _ in 0..<3 { _ = peer.receive() }
            peer.send(#"{"return": {"status": "runn"#)
        }
        defer { server.stop() }
        let client = try await QMPClient.connect(socketPath: server.path)
        defer { client.close() }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for name in ["a", "b", "c"] {
                group.addTask {
                    await #expect {
                        _ = try await client.execute(name)
                    } throws: { error in
                        guard case QMPError.disconnected(let reason) = error else { return false }
                        return reason.contains("inside a message")
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(!client.isConnected)
    }

    @Test("a server that never greets times out and says another client may hold the monitor")
    func neverGreets() async throws {
        let server = try FakeQMPServer { peer in peer.waitForClose() }
        defer { server.stop() }
        await #expect(throws: QMPError.greetingTimeout(path: server.path, seconds: 0.3)) {
            _ = try await QMPClient.connect(socketPath: server.path, timeout: .milliseconds(300))
        }
        #expect(QMPError.greetingTimeout(path: server.path, seconds: 0.3).description.contains("another client may hold the monitor"))
    }

    @Test("a JSON peer that does not greet like QMP is notQMP")
    func jsonButNotQMP() async throws {
        let server = try FakeQMPServer { peer in
            peer.send(#"{"hello": "world"}"# + "\n")
            peer.waitForClose()
        }
        defer { server.stop() }
        await #expect(throws: QMPError.notQMP(path: server.path, received: #"{"hello": "world"}"#)) {
            _ = try await QMPClient.connect(socketPath: server.path)
        }
    }

    @Test("a command with no reply times out on its own deadline; the session goes on")
    func commandTimeout() async throws {
        let server = try FakeQMPServer { peer in
            peer.greet()
            peer.negotiate()
            guard peer.receive() != nil, let second = peer.receive() else { return }
            peer.reply(to: second, #"{"return": "late but fine"}"#)
            peer.waitForClose()
        }
        defer { server.stop() }
        let client = try await QMPClient.connect(socketPath: server.path)
        defer { client.close() }
        await #expect(throws: QMPError.timeout(command: "silent", seconds: 0.2)) {
            try await client.execute("silent", timeout: .milliseconds(200))
        }
        #expect(try await client.execute("second").string == "late but fine")
    }

    @Test("close() fails pending commands and finishes the event stream")
    func closeFailsPending() async throws {
        let server = try FakeQMPServer { peer in
            peer.greet()
            peer.negotiate()
            peer.waitForClose()
        }
        defer { server.stop() }
        let client = try await QMPClient.connect(socketPath: server.path)
        let pending = Task { try await client.execute("query-status") }
        try await Task.sleep(for: .milliseconds(50))
        client.close()
        await #expect(throws: QMPError.disconnected(reason: "the client closed the connection")) { try await pending.value }
        for await _ in client.events { Issue.record("no events were sent") }
    }

    @Test("arguments are serialized by json-c, so any string arrives intact")
    func argumentsArriveIntact() async throws {
        let nasty = #"quote " backslash \ newline"# + "\n" + "tab\t nul\u{0} é 🙂 }{"
        let server = try FakeQMPServer.answeringOne { command in #"{"return": \#(command["arguments"]?.serialized() ?? "null")}"# }
        defer { server.stop() }
        let client = try await QMPClient.connect(socketPath: server.path)
        defer { client.close() }
        let echoed = try await client.execute("echo", arguments: ["text": .string(nasty), "n": 1])
        #expect(echoed["text"]?.string == nasty)
        #expect(echoed.value == ["text": .string(nasty), "n": 1])
    }
}

@Suite("connecting to bad sockets")
struct ConnectErrorTests {
    @Test("a socket path over the 107-byte limit still connects")
    func longPath() async throws {
        let base = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: base) }
        let deep = base + "/" + String(repeating: "deep-folder-name/", count: 8)
        try FileManager.default.createDirectory(atPath: deep, withIntermediateDirectories: true)
        let path = deep + "qmp.sock"
        #expect(path.utf8.count > 107)
        let server = try FakeQMPServer.answeringOne(path: path) { _ in #"{"return": {"status": "running"}}"# }
        defer { server.stop() }
        let client = try await QMPClient.connect(socketPath: path)
        #expect(try await client.execute("query-status")["status"]?.string == "running")
        client.close()
    }

    @Test("a missing socket is socketNotFound")
    func missing() async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        await #expect(throws: QMPError.socketNotFound(path: directory + "/none.sock")) {
            _ = try await QMPClient.connect(socketPath: directory + "/none.sock")
        }
    }

    @Test("a stale socket (nobody listening) is connectionRefused")
    func stale() async throws {
        let server = try FakeQMPServer { _ in }
        let path = server.path
        let directory = server.directory
        // Closing the listener leaves the socket file behind, as a crashed QEMU does.
        server.stopKeepingFiles()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        await #expect(throws: QMPError.connectionRefused(path: path)) {
            _ = try await QMPClient.connect(socketPath: path)
        }
    }

    @Test("a socket the user may not open is permissionDenied", .enabled(if: getuid() != 0, "root bypasses file permissions"))
    func permission() async throws {
        let server = try FakeQMPServer { _ in }
        defer { server.stop() }
        chmod(server.path, 0)
        await #expect(throws: QMPError.permissionDenied(path: server.path)) {
            _ = try await QMPClient.connect(socketPath: server.path)
        }
    }
}
