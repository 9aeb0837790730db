// The client against an in-process fake server: framing, unknown ids, bad peers, drops and timeouts.
import Foundation
import QMP
import Synchronization
import Testing

@Suite("QMP client against a fake server")
struct FakeServerTests {
    /// Runs "silent" (which the fake server never answers) with a 200 ms limit.
    func expectSilentTimesOut(_ client: QMPClient, sourceLocation: SourceLocation = #_sourceLocation) async {
        await #expect(throws: QMPError.timeout(command: "silent", seconds: 0.2), sourceLocation: sourceLocation) {
            try await client.execute("silent", timeout: .milliseconds(200))
        }
    }

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
            let id = command["id"].map { #", "id": \#($0.serialized())"# } ?? ""
            let reply = Array(#"{"return": {"status": "running", "running": true}\#(id)}"#.utf8) + [13, 10]
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
        await expectSilentTimesOut(client)
        #expect(try await client.execute("second").string == "late but fine")
    }

    @Test("a lone command travels without an id; overlapping commands carry ids and may be answered in any order")
    func idOnlyWhenCommandsOverlap() async throws {
        let seen = Mutex<[String: Bool]>([:])
        let server = try FakeQMPServer { peer in
            peer.greet()
            peer.negotiate()
            guard let first = peer.receive(), let second = peer.receive() else { return }
            for command in [first, second] {
                let name = command["execute"]?.string ?? "?"
                seen.withLock { $0[name] = command["id"] != nil }
            }
            // Replies matched by id and by being the one id-less command, not by order.
            let (lone, overlapping) = first["id"] == nil ? (first, second) : (second, first)
            peer.reply(to: overlapping, #"{"return": "overlapping"}"#)
            peer.reply(to: lone, #"{"return": "lone"}"#)
            guard let third = peer.receive() else { return }
            seen.withLock { $0["third"] = third["id"] != nil }
            peer.reply(to: third, #"{"return": 3}"#)
            peer.waitForClose()
        }
        defer { server.stop() }
        let client = try await QMPClient.connect(socketPath: server.path)
        defer { client.close() }
        let first = Task { try await client.execute("first") }
        // Wait until "first" is on the wire, so "second" overlaps it.
        try await Task.sleep(for: .milliseconds(100))
        let second = try await client.execute("second")
        #expect(try await first.value.string == "lone")
        #expect(second.string == "overlapping")
        #expect(try await client.execute("third").int == 3)
        #expect(seen.withLock { $0 } == ["first": false, "second": true, "third": false])
    }

    @Test("a late reply owed to a timed-out id-less command is dropped, not taken for the next command's")
    func lateReplyToIdlessCommand() async throws {
        let ids = Mutex<[Bool]>([])
        let server = try FakeQMPServer { peer in
            peer.greet()
            peer.negotiate()
            guard let silent = peer.receive(), let next = peer.receive() else { return }
            ids.withLock { $0 += [silent["id"] != nil, next["id"] != nil] }
            peer.reply(to: silent, #"{"return": "late reply to silent"}"#)
            peer.reply(to: next, #"{"return": "for next"}"#)
            guard let after = peer.receive() else { return }
            ids.withLock { $0.append(after["id"] != nil) }
            peer.reply(to: after, #"{"return": "for after"}"#)
            peer.waitForClose()
        }
        defer { server.stop() }
        let client = try await QMPClient.connect(socketPath: server.path)
        defer { client.close() }
        await expectSilentTimesOut(client)
        #expect(try await client.execute("next").string == "for next")
        #expect(try await client.execute("after").string == "for after")
        // "next" needed an id (a reply was owed); once the stray arrived, "after" did not.
        #expect(ids.withLock { $0 } == [false, true, false])
    }

    @Test("a session run on the connection's own thread: replies, a timer's timeout, and life after close")
    func sessionOnConnectionThread() async throws {
        let server = try FakeQMPServer { peer in
            peer.greet()
            peer.negotiate()
            for index in 0..<20 {
                guard let command = peer.receive() else { return }
                peer.reply(to: command, #"{"return": \#(index)}"#)
            }
            _ = peer.receive()  // "silent": never answered
            peer.waitForClose()
        }
        defer { server.stop() }
        let client = try await QMPClient.connect(socketPath: server.path)
        try await client.withExecutor {
            for index in 0..<20 { #expect(try await client.execute("count").int == Int64(index)) }
            // The timeout is decided on the timer's thread, which must wake the connection's thread.
            await expectSilentTimesOut(client)
            client.close()
            // The connection's thread has ended: the task still runs (its jobs go to Dispatch).
            try await Task.sleep(for: .milliseconds(20))
            await #expect(throws: QMPError.self) { try await client.execute("after-close") }
        }
        #expect(!client.isConnected)
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
