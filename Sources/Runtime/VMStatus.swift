// A VM's state as `status` reports it: process liveness, QEMU's run state, SEV state, the guest's own report.
import CShims
import FoundationEssentials
import Support

#if canImport(Glibc)
    import Glibc
#endif

public enum VMState: String, Codable, Sendable, CaseIterable {
    case stopped, starting, running, paused, shutdown, crashed
}

/// SEV state as `query-sev` reports it for a running VM.
public struct SEVStatus: Codable, Sendable, Equatable {
    public var enabled: Bool
    public var type: String?
    public var state: String?
    public var apiVersion: String?
    public var policy: String?
}

public struct VMStatus: Codable, Sendable {
    public var name: String
    public var state: VMState
    /// Why the VM is crashed or stopped, or a note about how the state was found.
    public var reason: String?
    public var pid: Int32?
    /// QEMU's own run state (`query-status`), e.g. running, paused, prelaunch, guest-panicked.
    public var qemuStatus: String?
    public var mode: GuestMode?
    public var accel: String?
    public var qemuVersion: String?
    public var firmware: String?
    public var startedAt: Date?
    public var sev: SEVStatus?
    /// What the guest kernel printed about memory encryption on its console.
    public var guestReport: [String]
    public var runtimeFolder: String
    public var consoleSocket: String?
    /// The launch digest a verifier should expect (hex), recorded at start; or why there is none.
    public var expectedDigest: String?
    public var expectedDigestNote: String?
    /// SEV / SEV-ES: the PSP's launch measurement (base64) from `query-sev-launch-measure`.
    public var launchMeasurement: String?

    /// Maps QEMU's RunState (qapi/run-state.json) onto sevvm's states.
    static func state(forQEMUStatus status: String) -> VMState {
        switch status {
        case "running": return .running
        case "prelaunch", "inmigrate": return .starting
        case "shutdown": return .shutdown
        case "internal-error", "guest-panicked": return .crashed
        default: return .paused
        }
    }

    /// Lines such as `Memory Encryption Features active: SEV SEV-ES SEV-SNP` from the console log:
    /// how AMD's README tells users to confirm encryption from inside the guest.
    static func guestReport(consoleLog path: String) -> [String] {
        // The kernel prints these lines early in boot: the log's first 4 MiB holds them. Searched
        // as bytes (memmem) because a chatty guest's log is megabytes and status must stay quick.
        guard let log = readPrefix(of: path, upTo: 4 << 20), !log.isEmpty else { return [] }
        let markers = ["Memory Encryption Features active", "SEV: Status:", "SEV-SNP: "].map { Array($0.utf8) }
        var lines: [Range<Int>] = []
        log.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return }
            for marker in markers {
                var from = 0
                while from < raw.count {
                    let offset = sevvm_find_bytes(base + from, raw.count - from, marker, marker.count)
                    if offset < 0 { break }
                    let hit = from + offset
                    let start = (raw[..<hit].lastIndex(of: UInt8(ascii: "\n")) ?? -1) + 1
                    let end = raw[hit...].firstIndex(of: UInt8(ascii: "\n")) ?? raw.count
                    lines.append(start..<end)
                    from = end
                }
            }
        }
        var found: [String] = []
        for range in lines.sorted(by: { $0.lowerBound < $1.lowerBound }) {
            var end = range.upperBound
            while end > range.lowerBound && log[end - 1] == UInt8(ascii: "\r") { end -= 1 }
            var text = String(decoding: log[range.lowerBound..<end], as: UTF8.self)
            // Drop the kernel's timestamp prefix and any prefix the guest added.
            if let range = text.firstRange(of: "] ") { text = String(text[range.upperBound...]) }
            if let range = text.firstRange(of: "dmesg: ") { text = String(text[range.upperBound...]) }
            if !found.contains(text) { found.append(text) }
        }
        return found
    }

    /// Up to `limit` bytes from the start of the file (sized by fstat, so a small log costs a
    /// small buffer), or nil when it cannot be read.
    private static func readPrefix(of path: String, upTo limit: Int) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { return nil }
        let wanted = min(limit, Int(info.st_size))
        return [UInt8](unsafeUninitializedCapacity: wanted) { buffer, filled in
            guard let base = buffer.baseAddress else { return }
            while filled < wanted {
                let count = read(fd, base + filled, wanted - filled)
                if count < 0 && errno == EINTR { continue }
                if count <= 0 { break }
                filled += count
            }
        }
    }

    /// Human-readable lines for `sevvm status`.
    public func render(terminal: Terminal) -> String {
        let colour: Terminal.Style
        switch state {
        case .running: colour = .green
        case .crashed: colour = .red
        case .paused, .starting, .shutdown: colour = .yellow
        case .stopped: colour = .dim
        }
        var lines = ["\(name): \(terminal.paint(state.rawValue, colour))"]
        if let reason { lines.append("  reason: \(reason)") }
        if let pid {
            var facts = ["pid \(pid)"]
            if let qemuStatus, qemuStatus != state.rawValue { facts.append("QEMU status \(qemuStatus)") }
            if let startedAt { facts.append("up \(Self.duration(Date().timeIntervalSince(startedAt)))") }
            lines.append("  process: " + facts.joined(separator: ", "))
        }
        var launch: [String] = []
        if let mode { launch.append("mode \(mode.displayName)") }
        if let accel { launch.append("accel \(accel)") }
        if let qemuVersion { launch.append("QEMU \(qemuVersion)") }
        if !launch.isEmpty { lines.append("  launch: " + launch.joined(separator: ", ")) }
        if let firmware { lines.append("  firmware: \(firmware)") }
        if let expectedDigest {
            lines.append("  expected launch digest: \(expectedDigest)")
        } else if let expectedDigestNote {
            lines.append("  expected launch digest: unavailable (\(expectedDigestNote))")
        }
        if let launchMeasurement { lines.append("  launch measurement (query-sev-launch-measure): \(launchMeasurement)") }
        if let sev {
            if sev.enabled {
                let parts = [
                    sev.type, sev.state.map { "state \($0)" }, sev.policy.map { "policy \($0)" }, sev.apiVersion.map { "API \($0)" },
                ]
                lines.append("  SEV (query-sev): " + parts.compactMap { $0 }.joined(separator: ", "))
            } else {
                lines.append("  SEV (query-sev): not enabled")
            }
        }
        for report in guestReport { lines.append("  guest reported: \(report)") }
        if let consoleSocket { lines.append("  console: sevvm console \(name)   (socket \(consoleSocket))") }
        return lines.joined(separator: "\n")
    }

    static func duration(_ seconds: TimeInterval) -> String {
        let total = Int(max(0, seconds))
        if total < 60 { return "\(total)s" }
        if total < 3600 { return "\(total / 60)m\(total % 60)s" }
        return "\(total / 3600)h\((total % 3600) / 60)m"
    }
}
