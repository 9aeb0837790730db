// How caps obtains query-sev-capabilities: the protocol, its answers, and the advice for QEMU's refusals.
import FoundationEssentials
import QMP

#if canImport(Glibc)
    import Glibc
#endif

/// What asking QEMU for its SEV capabilities produced.
public enum CapabilityAnswer: Sendable, Equatable {
    /// QEMU answered with the platform's capabilities.
    case answered(SEVCapabilities)
    /// QEMU answered with an error (`SEV is not enabled in KVM`, `KVM not enabled`, ...).
    case refused(errorClass: String, description: String)
    /// QEMU could not be asked at all (did not start, socket missing, protocol error).
    case unavailable(reason: String)
}

/// Where query-sev-capabilities is answered: a throw-away QEMU, an existing QMP socket, or a test server.
public protocol SEVCapabilitiesSource: Sendable {
    /// Human words for where the answer came from ("throw-away QEMU with -accel kvm").
    var origin: String { get }
    func query() async -> CapabilityQuery
}

/// One query's outcome plus how it was obtained (e.g. why KVM was not used).
public struct CapabilityQuery: Sendable, Equatable {
    public var answer: CapabilityAnswer
    public var origin: String
    /// Why the query ran differently than asked (e.g. fell back to TCG because /dev/kvm did not open).
    public var note: String?
    /// The version of the QEMU that answered (from its QMP greeting), when known.
    public var qemuVersion: QEMUVersion?
    /// The SEV objects that QEMU has (from qom-list-properties), when asked.
    public var qemuSupport: QEMUSEVSupport?

    public init(
        answer: CapabilityAnswer, origin: String, note: String? = nil, qemuVersion: QEMUVersion? = nil, qemuSupport: QEMUSEVSupport? = nil
    ) {
        self.answer = answer
        self.origin = origin
        self.note = note
        self.qemuVersion = qemuVersion
        self.qemuSupport = qemuSupport
    }
}

enum CapabilityAdvice {
    /// The fix for one of QEMU's known refusals.
    static func hint(for description: String) -> String {
        if description.contains("SEV is not enabled in KVM") {
            return "kvm_amd runs without SEV: enable SMEE and SEV Control in the BIOS, put `options kvm_amd sev=1 sev-es=1 sev-snp=1` "
                + "in /etc/modprobe.d/kvm.conf and reload kvm_amd (or reboot)"
        }
        if description.contains("KVM not enabled") {
            return "that QEMU runs without KVM (TCG): SEV needs -accel kvm, so load kvm_amd (`modprobe kvm_amd`) "
                + "and make /dev/kvm accessible to this user (group kvm)"
        }
        if description.contains("Failed to open /dev/sev") || description.contains("/dev/sev") {
            return "load the ccp driver (`modprobe ccp`) so /dev/sev exists, and let this user open it (root, or a udev rule for group kvm)"
        }
        return "see QEMU's message; `sevvm caps` lists the host checks that explain most SEV failures"
    }
}
