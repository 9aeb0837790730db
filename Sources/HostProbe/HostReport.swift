// The caps report model: a tree of checks (PASS/FAIL/WARN/SKIP with a fix), per-mode verdicts, and the host facts.
import FoundationEssentials
import QMP
import Support

#if canImport(Glibc)
    import Glibc
#endif

public enum CheckStatus: String, Sendable, Codable, CaseIterable {
    case pass = "PASS"
    case fail = "FAIL"
    case warn = "WARN"
    case skip = "SKIP"
}

/// The part of the host a check looks at; text output groups by it.
public enum CheckCategory: String, Sendable, Codable, CaseIterable {
    case cpu, bios, kernel, kvm, platform, resources, qemu, firmware, qmp, libvirt
}

/// One line of the report. `parent` names the check it ran under: a check runs only when its
/// parent passed (or warned), otherwise it is SKIP, as in snphost's `ok`.
public struct HostCheck: Sendable, Codable, Equatable {
    /// Stable dotted name ("bios.smee"): scripts and verdicts refer to checks by it.
    public var name: String
    public var category: CheckCategory
    public var status: CheckStatus
    /// One line saying what was found.
    public var message: String
    /// On FAIL or WARN: what to do about it.
    public var hint: String?
    public var parent: String?
    /// The modes this check gates: a FAIL here makes them not ready.
    public var gates: [GuestMode]

    public init(
        name: String, category: CheckCategory, status: CheckStatus, message: String, hint: String? = nil, parent: String? = nil,
        gates: [GuestMode] = []
    ) {
        self.name = name
        self.category = category
        self.status = status
        self.message = message
        self.hint = hint
        self.parent = parent
        self.gates = gates
    }
}

/// Whether one mode can launch here, and which checks stand in the way.
public struct ModeVerdict: Sendable, Codable, Equatable {
    public var mode: GuestMode
    public var ready: Bool
    /// Names of the failed checks that gate this mode.
    public var blocking: [String]
    /// Gating checks that could not run (e.g. MSRs unreadable without root): readiness is unproven there.
    public var unverified: [String]
}

/// What `sevvm caps` found, in the schema docs/caps-json.md documents (version 1).
public struct HostReport: Sendable, Codable {
    public static let currentSchemaVersion = 1

    public var schemaVersion: Int
    public var host: HostSummary
    public var facts: SEVHostFacts
    public var checks: [HostCheck]
    public var verdicts: [ModeVerdict]
    public var qemu: QEMUInstallation?
    public var qemuSupport: QEMUSEVSupport?
    /// The firmware each encrypted mode would boot, when one fits.
    public var firmware: [String: FirmwareChoice]
    public var capabilities: SEVCapabilities?

    /// The most protective mode that is ready (SNP, then SEV-ES, then SEV).
    public var bestReadyMode: GuestMode? {
        [GuestMode.snp, .sevES, .sev].first { mode in verdicts.first { $0.mode == mode }?.ready == true }
    }

    public func verdict(for mode: GuestMode) -> ModeVerdict? { verdicts.first { $0.mode == mode } }

    /// What `sevvm caps` exits 0 for: `mode` is ready, or (no mode asked) any encrypted mode is.
    public func isReady(for mode: GuestMode?) -> Bool {
        guard let mode else { return bestReadyMode != nil }
        return verdict(for: mode)?.ready == true
    }

    public func check(_ name: String) -> HostCheck? { checks.first { $0.name == name } }

    /// How deep a check sits under ancestors of its own category (0 for roots), for indentation.
    public func depth(of check: HostCheck) -> Int {
        var depth = 0
        var parent = check.parent
        while let name = parent, let ancestor = self.check(name), ancestor.category == check.category, depth < checks.count {
            depth += 1
            parent = ancestor.parent
        }
        return depth
    }

    /// Verdicts from the checks' gates: a mode is ready when no check gating it failed. A gating
    /// check skipped under a failed ancestor blocks through that ancestor; other skips are unknowns.
    static func verdicts(for checks: [HostCheck]) -> [ModeVerdict] {
        let byName = Dictionary(checks.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        func failedAncestor(of check: HostCheck) -> String? {
            var parent = check.parent
            var steps = 0
            while let name = parent, let ancestor = byName[name], steps < checks.count {
                if ancestor.status == .fail { return name }
                parent = ancestor.parent
                steps += 1
            }
            return nil
        }
        return [GuestMode.sev, .sevES, .snp].map { mode in
            var blocking: [String] = []
            var unverified: [String] = []
            for check in checks where check.gates.contains(mode) {
                switch check.status {
                case .fail:
                    if !blocking.contains(check.name) { blocking.append(check.name) }
                case .skip:
                    if let ancestor = failedAncestor(of: check) {
                        if !blocking.contains(ancestor) { blocking.append(ancestor) }
                    } else {
                        unverified.append(check.name)
                    }
                case .pass, .warn:
                    break
                }
            }
            return ModeVerdict(mode: mode, ready: blocking.isEmpty, blocking: blocking, unverified: unverified)
        }
    }
}

/// Who the host is: CPU, kernel, and how caps reached QMP.
public struct HostSummary: Sendable, Codable, Equatable {
    public var cpu: CPUIdentity
    public var encryption: MemoryEncryptionFeatures?
    public var kernel: String
    public var sevFirmware: String?
    public var snpFirmware: String?
    public var chipID: String?
}
