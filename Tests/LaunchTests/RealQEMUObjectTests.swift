// Every -object sevvm generates is parsed by real QEMU: it rejects unknown properties and wrong lengths.
import Definitions
import Foundation
import HostProbe
import Launch
import Support
import Testing

#if canImport(Glibc)
    import Glibc
#endif

private let qemuPath = ProcessRunner.which("qemu-system-x86_64")

/// What a short-lived `qemu-system-x86_64 -machine none -S` did with our options.
struct QEMUOutcome {
    var greeting: String?
    var exitStatus: Int32?
    var standardError: String
}

/// Starts QEMU with `extra` options and a QMP socket, reads the greeting line, kills QEMU by PID.
func startBareQEMU(_ extra: [String]) throws -> QEMUOutcome {
    let executable = try #require(qemuPath)
    // Short path: unix socket paths are limited to 107 bytes.
    let directory = "/tmp/sevvm-lt-\(UUID().uuidString.prefix(8))"
    try AtomicFile.makeDirectory(directory, permissions: 0o700)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let socketPath = directory + "/qmp.sock"
    let stderrPath = directory + "/stderr"
    FileManager.default.createFile(atPath: stderrPath, contents: nil)
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments =
        ["-machine", "none", "-S", "-nodefaults", "-display", "none", "-qmp", "unix:\(socketPath),server=on,wait=off"] + extra
    process.standardOutput = FileHandle.nullDevice
    process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: stderrPath))
    try process.run()
    let pid = process.processIdentifier
    defer {
        if process.isRunning { kill(pid, SIGKILL) }
        process.waitUntilExit()
    }
    var greeting: String?
    for _ in 0..<500 where process.isRunning {
        if access(socketPath, F_OK) == 0, let line = readGreeting(socketPath) {
            greeting = line
            break
        }
        usleep(20_000)
    }
    if process.isRunning {
        kill(pid, SIGKILL)
    }
    process.waitUntilExit()
    let status: Int32? = process.terminationReason == .exit ? process.terminationStatus : nil
    let errors = (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? ""
    return QEMUOutcome(greeting: greeting, exitStatus: status, standardError: errors)
}

/// Connects to a unix socket and reads one line (QMP's greeting), or nil.
func readGreeting(_ path: String) -> String? {
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    let bytes = Array(path.utf8)
    guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return nil }
    withUnsafeMutableBytes(of: &address.sun_path) { raw in
        for (index, byte) in bytes.enumerated() { raw[index] = byte }
    }
    let connected = withUnsafePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
    guard connected == 0 else { return nil }
    var timeout = timeval(tv_sec: 5, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    var received: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while !received.contains(UInt8(ascii: "\n")) {
        let count = read(fd, &buffer, buffer.count)
        guard count > 0 else { break }
        received += buffer[0..<count]
    }
    return received.isEmpty ? nil : String(decoding: received, as: UTF8.self)
}

/// The -object values of a plan.
func objects(in plan: LaunchPlan) -> [String] {
    zip(plan.arguments, plan.arguments.dropFirst()).filter { $0.0 == "-object" }.map(\.1)
}

@Suite(.serialized, .enabled(if: qemuPath != nil, "qemu-system-x86_64 is not installed: real-QEMU object tests skipped"))
struct RealQEMUObjectTests {
    @Test func snpObjectWithEveryPropertyAndMemoryBackendAreAccepted() throws {
        let plan = try LaunchPlanner.plan(
            for: richDefinition(mode: .snp), mode: nil, accel: nil, host: genoa, qemu: qemu10, firmware: singleOVMF, workspace: workspace)
        let generated = objects(in: plan)
        #expect(generated.count == 2)
        let snp = try #require(generated.first { $0.hasPrefix("sev-snp-guest,") })
        for property in [
            "policy=", "cbitpos=", "reduced-phys-bits=", "guest-visible-workarounds=", "id-block=", "id-auth=", "host-data=",
            "author-key-enabled=on", "vcek-disabled=on", "kernel-hashes=on",
        ] {
            #expect(snp.contains(property), "sev-snp-guest lacks \(property)")
        }
        let outcome = try startBareQEMU(generated.flatMap { ["-object", $0] })
        #expect(outcome.greeting?.contains(#""QMP""#) == true, "QEMU refused our objects: \(outcome.standardError)")
    }

    @Test(arguments: [GuestMode.sev, .sevES]) func sevGuestObjectIsAccepted(_ mode: GuestMode) throws {
        var definition = richDefinition(mode: mode)
        definition.hugepages = false
        definition.sev.kernelHashes = false
        let plan = try LaunchPlanner.plan(
            for: definition, mode: nil, accel: nil, host: genoa, qemu: qemu10, firmware: splitOVMF, workspace: workspace)
        let generated = objects(in: plan)
        #expect(generated.count == 1)
        let outcome = try startBareQEMU(generated.flatMap { ["-object", $0] })
        #expect(outcome.greeting?.contains(#""QMP""#) == true, "QEMU refused our objects: \(outcome.standardError)")
    }

    /// The harness itself must catch mistakes: host-data of 31 bytes is refused by QEMU.
    @Test func qemuRefusesAWrongLengthSoTheHarnessCanFail() throws {
        let shortHostData = Data(repeating: 1, count: 31).base64EncodedString()
        let outcome = try startBareQEMU(["-object", "sev-snp-guest,id=sev0,policy=0x30000,host-data=\(shortHostData)"])
        #expect(outcome.greeting == nil)
        #expect(outcome.exitStatus == 1)
        #expect(outcome.standardError.contains("host-data"))
    }
}
