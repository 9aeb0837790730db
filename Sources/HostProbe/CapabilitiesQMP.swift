// query-sev-capabilities over QMP: through an existing socket, or a throw-away QEMU started (and killed) for it.
import FoundationEssentials
import QMP

#if canImport(Glibc)
    import Glibc
#endif

extension SEVCapabilities {
    /// From query-sev-capabilities' `return` object.
    init(reply: JSONDocument) throws {
        func field<T>(_ name: String, _ read: (JSONDocument) -> T?) throws -> T {
            guard let value = reply[name].flatMap(read) else {
                throw HostProbeError.malformed(source: "query-sev-capabilities", reason: "no \(name) in \(reply.serialized().prefix(200))")
            }
            return value
        }
        try self.init(
            cbitpos: Int(try field("cbitpos", \.int)), reducedPhysBits: Int(try field("reduced-phys-bits", \.int)),
            pdhBase64: try field("pdh", \.string), certChainBase64: try field("cert-chain", \.string),
            cpu0IDBase64: try field("cpu0-id", \.string))
    }
}

/// Runs the query on a connected client and turns every outcome into an answer.
private func askCapabilities(_ client: QMPClient) async -> CapabilityAnswer {
    do {
        return .answered(try SEVCapabilities(reply: try await client.execute("query-sev-capabilities")))
    } catch QMPError.commandFailed(_, let errorClass, let description) {
        return .refused(errorClass: errorClass, description: description)
    } catch {
        return .unavailable(reason: "\(error)")
    }
}

/// Asks the QEMU listening on a QMP socket (`sevvm caps --qmp SOCKET`).
public struct SocketCapabilities: SEVCapabilitiesSource {
    public let socketPath: String

    public init(socketPath: String) {
        self.socketPath = socketPath
    }

    public var origin: String { "QMP socket \(socketPath)" }

    public func query() async -> CapabilityQuery {
        do {
            let client = try await QMPClient.connect(socketPath: socketPath, timeout: .seconds(5))
            defer { client.close() }
            return CapabilityQuery(answer: await askCapabilities(client), origin: origin)
        } catch {
            return CapabilityQuery(answer: .unavailable(reason: "\(error)"), origin: origin)
        }
    }
}

/// Starts `qemu-system-x86_64 -machine none -accel kvm -S -nodefaults`, asks, and kills it by PID.
/// When /dev/kvm cannot be opened the QEMU runs under TCG instead, whose answer (`KVM not enabled`)
/// then explains itself, and the note says why.
public struct ThrowawayQEMUCapabilities: SEVCapabilitiesSource {
    public let qemuPath: String
    public let kvmPath: String
    /// How long QEMU may take to open its QMP socket: it normally takes ~100 ms, but a loaded
    /// machine (parallel TCG guests) has been seen to need over 10 s.
    public var startTimeout: Duration = .seconds(30)

    public init(qemuPath: String, kvmPath: String = "/dev/kvm") {
        self.qemuPath = qemuPath
        self.kvmPath = kvmPath
    }

    public var origin: String { "throw-away QEMU (\(qemuPath))" }

    public func query() async -> CapabilityQuery {
        var note: String?
        var accel = "kvm"
        let fd = open(kvmPath, O_RDWR | O_CLOEXEC)
        if fd < 0 {
            note = "\(kvmPath) could not be opened (\(String(cString: strerror(errno)))), so the probe QEMU ran with -accel tcg"
            accel = "tcg"
        } else {
            close(fd)
        }
        do {
            var query = try await ask(accel: accel)
            query.note = note
            return query
        } catch {
            return CapabilityQuery(answer: .unavailable(reason: "\(error)"), origin: "\(origin) with -accel \(accel)", note: note)
        }
    }

    /// One QEMU answers everything caps asks of QEMU: its version (greeting), its SEV object
    /// properties (qom-list-properties) and query-sev-capabilities, so caps starts QEMU only once.
    private func ask(accel: String) async throws -> CapabilityQuery {
        let folder = try ChildProcess.privateFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let socket = folder + "/qmp.sock"
        let argv = [
            qemuPath, "-machine", "none", "-accel", accel, "-S", "-nodefaults", "-no-user-config", "-display", "none",
            "-qmp", "unix:\(socket),server=on,wait=off",
        ]
        let child = try ChildProcess.spawn(argv, outputPath: folder + "/qemu.log")
        // Always end the probe QEMU by its PID, whatever happened.
        defer { child.killAndReap() }
        // The socket file appears at bind(), a moment before listen(): retry until QEMU accepts.
        let deadline = ContinuousClock.now + startTimeout
        while true {
            if let status = child.exitStatus() {
                throw HostProbeError.capabilityQEMUFailed(argv: argv, status: status, stderr: child.output)
            }
            guard ContinuousClock.now < deadline else {
                throw HostProbeError.capabilityQEMUFailed(argv: argv, status: nil, stderr: child.output)
            }
            if FileManager.default.fileExists(atPath: socket) { break }
            try await Task.sleep(for: .milliseconds(1))
        }
        let client = try await connect(socket, child: child, argv: argv, deadline: deadline)
        defer { client.close() }
        let version = client.greeting.version
        async let sev = objectProperties(client, "sev-guest")
        async let snp = objectProperties(client, "sev-snp-guest")
        let answer = await askCapabilities(client)
        return CapabilityQuery(
            answer: answer, origin: "\(origin) with -accel \(accel)", qemuVersion: version,
            qemuSupport: QEMUSEVSupport(sevGuestProperties: await sev, snpGuestProperties: await snp))
    }

    /// Property names of a QOM type, nil when this QEMU has no such type.
    private func objectProperties(_ client: QMPClient, _ typename: String) async -> [String]? {
        guard let reply = try? await client.execute("qom-list-properties", arguments: ["typename": .string(typename)]),
            let elements = reply.elements
        else { return nil }
        return elements.compactMap { $0["name"]?.string }.filter { $0 != "type" }.sorted()
    }

    private func connect(_ socket: String, child: ChildProcess, argv: [String], deadline: ContinuousClock.Instant) async throws -> QMPClient
    {
        while true {
            do {
                return try await QMPClient.connect(socketPath: socket, timeout: startTimeout)
            } catch QMPError.connectionRefused, QMPError.socketNotFound {
                if let status = child.exitStatus() {
                    throw HostProbeError.capabilityQEMUFailed(argv: argv, status: status, stderr: child.output)
                }
                guard ContinuousClock.now < deadline else { throw QMPError.connectionRefused(path: socket) }
                try await Task.sleep(for: .milliseconds(1))
            }
        }
    }
}
