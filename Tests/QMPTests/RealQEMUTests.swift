// Sessions against real QEMU 10 under TCG: greeting, negotiation, errors, events, quit, big replies.
import Foundation
import QMP
import Testing

@Suite("QMP against real QEMU", .enabled(if: TestQEMU.available))
struct RealQEMUTests {
    @Test("greeting, version and a command", arguments: ["none", "q35"])
    func greetingAndStatus(machine: String) async throws {
        try await withQEMUSession(machine: machine) { client, _ in
            #expect(client.greeting.version >= QEMUVersion(major: 9, minor: 1, micro: 0))
            #expect(client.greeting.capabilities.contains("oob"))
            let status = try await client.execute("query-status")
            #expect(status["status"]?.string == "prelaunch")
            #expect(status["running"]?.bool == false)
            let version = try await client.execute("query-version")
            #expect(version["qemu"]?["major"]?.int == Int64(client.greeting.version.major))
        }
    }

    @Test("commands before qmp_capabilities fail with CommandNotFound")
    func commandNotFoundBeforeNegotiation() async throws {
        try await withQEMUSession(negotiate: false) { client, _ in
            await #expect(
                throws: QMPError.commandFailed(
                    command: "query-status", errorClass: "CommandNotFound",
                    description: "Expecting capabilities negotiation with 'qmp_capabilities'")
            ) {
                try await client.execute("query-status")
            }
            _ = try await client.execute("qmp_capabilities")
            #expect(try await client.execute("query-status")["status"]?.string == "prelaunch")
        }
    }

    @Test("a bad argument is a GenericError carrying QEMU's description")
    func genericErrorOnBadArgument() async throws {
        try await withQEMUSession { client, _ in
            do {
                _ = try await client.execute("qom-get", arguments: ["path": "/machine", "property": "no-such-property"])
                Issue.record("qom-get of a missing property succeeded")
            } catch let QMPError.commandFailed(command, errorClass, description) {
                #expect(command == "qom-get")
                #expect(errorClass == "GenericError")
                #expect(description.contains("no-such-property"))
            }
            await #expect(
                throws: QMPError.commandFailed(
                    command: "query-status", errorClass: "GenericError", description: "Parameter 'bogus' is unexpected")
            ) {
                try await client.execute("query-status", arguments: ["bogus": 1])
            }
            // The session survives the errors.
            #expect(try await client.execute("query-status")["running"]?.bool == false)
        }
    }

    @Test("stop and cont produce STOP and RESUME events with timestamps")
    func stopContEvents() async throws {
        try await withQEMUSession(machine: "q35") { client, _ in
            let before = Date().addingTimeInterval(-60)
            _ = try await client.execute("cont")
            _ = try await client.execute("stop")
            var names: [String] = []
            for await event in client.events {
                names.append(event.name)
                #expect(event.timestamp > before)
                #expect(event.json.hasPrefix("{") && event.json.contains("\"event\": \"\(event.name)\""))
                if event.name == "STOP" { break }
            }
            #expect(names == ["RESUME", "STOP"])
            #expect(try await client.execute("query-status")["status"]?.string == "paused")
        }
    }

    @Test("quit ends the session: the reply arrives, then everything fails as disconnected")
    func quitEndsSession() async throws {
        try await withQEMUSession { client, qemu in
            _ = try await client.execute("quit")
            var sawShutdown = false
            for await event in client.events where event.name == "SHUTDOWN" {
                sawShutdown = true
                #expect(event.data?["reason"]?.string == "host-qmp-quit")
            }
            #expect(sawShutdown)
            #expect(qemu.waitForExit())
            #expect(!client.isConnected)
            await #expect(throws: QMPError.self) { try await client.execute("query-status") }
            do {
                _ = try await client.execute("query-status")
            } catch let error as QMPError {
                guard case .disconnected = error else {
                    Issue.record("expected disconnected, got \(error)")
                    return
                }
            }
        }
    }

    @Test("the 240 KB query-qmp-schema reply decodes whole")
    func schemaReply() async throws {
        try await withQEMUSession { client, _ in
            let schema = try await client.execute("query-qmp-schema")
            let entries = try #require(schema.elements)
            #expect(entries.count > 1000)
            #expect(schema.serialized().utf8.count > 200_000)
            let names = Set(entries.compactMap { $0["name"]?.string })
            #expect(names.contains("query-status"))
            #expect(names.contains("STOP"))
            // Many commands in flight at once are matched to their own replies.
            async let a = client.execute("query-status")
            async let b = client.execute("query-name")
            async let c = client.execute("query-qmp-schema")
            let (status, name, again) = try await (a, b, c)
            #expect(status["status"]?.string == "prelaunch")
            #expect(name.keys.isEmpty)
            #expect(again.count == entries.count)
        }
    }

    @Test("QEMU's human monitor is recognized as not QMP")
    func humanMonitorIsNotQMP() async throws {
        let qemu = try TestQEMU(monitorSocket: "hmp.sock")
        defer { qemu.stop() }
        let path = qemu.directory + "/hmp.sock"
        do {
            _ = try await QMPClient.connect(socketPath: path)
            Issue.record("connecting to the human monitor succeeded")
        } catch let QMPError.notQMP(reported, received) {
            #expect(reported == path)
            #expect(received.hasPrefix("QEMU 10") || received.hasPrefix("QEMU 9"))
            #expect(QMPError.notQMP(path: path, received: received).description.contains("does not speak QMP"))
        }
        // QMP on the same QEMU still works.
        let client = try await QMPClient.connect(socketPath: qemu.qmpPath)
        client.close()
    }

    @Test("a second client waits for the monitor and times out with advice")
    func monitorHeldByAnotherClient() async throws {
        let qemu = try TestQEMU()
        defer { qemu.stop() }
        let first = try await QMPClient.connect(socketPath: qemu.qmpPath)
        defer { first.close() }
        await #expect(throws: QMPError.greetingTimeout(path: qemu.qmpPath, seconds: 0.5)) {
            _ = try await QMPClient.connect(socketPath: qemu.qmpPath, timeout: .milliseconds(500))
        }
        #expect(try await first.execute("query-status")["status"]?.string == "prelaunch")
    }
}
