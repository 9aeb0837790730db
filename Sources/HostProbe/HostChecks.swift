// The check tree: every host check caps runs, in order, with the rule that a child runs only when its parent passed.
import FoundationEssentials
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// What one check found before the tree decides whether it ran at all.
struct Outcome {
    var status: CheckStatus
    var message: String
    var hint: String?

    static func pass(_ message: String) -> Outcome { Outcome(status: .pass, message: message) }
    static func fail(_ message: String, hint: String) -> Outcome { Outcome(status: .fail, message: message, hint: hint) }
    static func warn(_ message: String, hint: String) -> Outcome { Outcome(status: .warn, message: message, hint: hint) }
    static func skip(_ message: String) -> Outcome { Outcome(status: .skip, message: message) }
}

/// Collects checks in tree order; a check whose parent did not pass (or warn) is SKIP without running.
struct CheckTree {
    private(set) var checks: [HostCheck] = []

    func status(of name: String) -> CheckStatus? { checks.last { $0.name == name }?.status }

    mutating func add(
        _ name: String, _ category: CheckCategory, parent: String? = nil, gates: [GuestMode], _ evaluate: () -> Outcome
    ) {
        if let parent, let parentStatus = status(of: parent), parentStatus == .fail || parentStatus == .skip {
            let why = parentStatus == .fail ? "\(parent) failed" : "\(parent) was skipped"
            checks.append(
                HostCheck(name: name, category: category, status: .skip, message: "not checked: \(why)", parent: parent, gates: gates))
            return
        }
        let outcome = evaluate()
        checks.append(
            HostCheck(
                name: name, category: category, status: outcome.status, message: outcome.message,
                hint: outcome.status == .pass || outcome.status == .skip ? nil : outcome.hint, parent: parent, gates: gates))
    }
}

/// Fix hints that several checks share (menu paths from AMD's BIOS, as the seed README lists them).
enum Fix {
    static let cpuOptions = "Advanced → AMD CBS → CPU Common Options"
    static let smee = "enable \(cpuOptions) → SMEE and SEV Control in the BIOS"
    static let snpBIOS =
        "enable \(cpuOptions) → SNP Memory (RMP Table) Coverage and Advanced → NBIO Common Options → IOMMU/Security → SEV-SNP Support in the BIOS"
    static let esASIDs = "set \(cpuOptions) → SEV-ES ASID Space Limit (e.g. 99) in the BIOS so SEV-ES/SNP guests get ASIDs"
    static let modprobeLine = "options kvm_amd sev=1 sev-es=1 sev-snp=1"

    static func kvmParameter(_ parameter: String, configured: String?) -> String {
        if let configured {
            return "\(configured) asks for it but kvm_amd was loaded without it: `rmmod kvm_amd && modprobe kvm_amd` or reboot "
                + "(if it stays N, the BIOS or the platform refused it: see the bios.* and platform.* checks and dmesg)"
        }
        return "add `\(modprobeLine)` to /etc/modprobe.d/kvm.conf, then reload kvm_amd or reboot (\(parameter) is off)"
    }

    /// AMD's SEV firmware file for a CPU (what /lib/firmware/amd must hold to update the PSP firmware).
    static func firmwareFile(family: Int, model: Int) -> String {
        "amd_sev_fam\(String(family, radix: 16))h_model\(String(model >> 4, radix: 16))xh.sbin"
    }
}
