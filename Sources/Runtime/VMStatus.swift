// A VM's state as `status` reports it: process liveness, QEMU's run state, SEV state, the guest's own report.
import Foundation
import Support

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
        guard let handle = FileHandle(forReadingAtPath: path) else { return [] }
        defer { try? handle.close() }
        // The kernel prints these lines early in boot: the log's first 4 MiB holds them.
        guard let data = try? handle.read(upToCount: 4 << 20), !data.isEmpty else { return [] }
        let markers = ["Memory Encryption Features active", "SEV: Status:", "SEV-SNP: "]
        var found: [String] = []
        for line in String(decoding: data, as: UTF8.self).components(separatedBy: .newlines) {
            guard markers.contains(where: { line.contains($0) }) else { continue }
            // Drop the kernel's timestamp prefix and any prefix the guest added.
            var text = String(line)
            if let range = text.range(of: "] ") { text = String(text[range.upperBound...]) }
            if let range = text.range(of: "dmesg: ") { text = String(text[range.upperBound...]) }
            if !found.contains(text) { found.append(text) }
        }
        return found
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
