// Known QEMU/KVM start-up errors (sev-facts.md) turned into plain advice for the person starting a VM.
import FoundationEssentials

#if canImport(Glibc)
    import Glibc
#endif

public enum StartupAdvice {
    /// One known failure: a fragment of QEMU's stderr and what to tell the user.
    public struct Rule: Sendable {
        public let fragment: String
        public let advice: String
    }

    /// Matched in order, case-insensitively, against QEMU's stderr.
    public static let rules: [Rule] = [
        Rule(
            fragment: "vm-type SEV-SNP not supported by KVM",
            advice: "SEV-SNP is not enabled in this host's KVM (kvm_amd sev_snp is off, or the host kernel or CPU "
                + "lacks SNP). Run `sevvm caps` to see what is missing, or start with --sev-es, --sev or --no-sev."),
        Rule(
            fragment: "vm-type SEV-ES not supported by KVM",
            advice: "SEV-ES is not enabled in this host's KVM. Run `sevvm caps`, or start with --sev or --no-sev."),
        Rule(
            fragment: "vm-type SEV not supported by KVM",
            advice: "SEV is not enabled in this host's KVM. Run `sevvm caps`, or start with --no-sev."),
        Rule(
            fragment: "Failed to open /dev/sev",
            advice: "QEMU could not open the SEV device: check that /dev/sev exists (ccp module loaded, SEV firmware "
                + "initialised) and that your user may open it (`sevvm caps` checks both)."),
        Rule(
            fragment: "failed to create encryption context",
            advice: "The SEV firmware refused a new guest context: no free ASIDs, or SEV is not initialised. "
                + "Run `sevvm caps` and check `misc.capacity`."),
        Rule(
            fragment: "cbitpos check failed",
            advice: "The definition's cbitpos differs from this CPU's C-bit position (CPUID 0x8000001F EBX[5:0]). "
                + "Remove the cbitpos override (`sevvm edit NAME --set cbitpos=`) so sevvm uses the host's value."),
        Rule(
            fragment: "Failed to locate SEV metadata header",
            advice: "This firmware has no SEV metadata, so it cannot boot an SNP guest. Use an SNP-capable single-file "
                + "OVMF.fd (edk2-stable202405 or newer, e.g. `sevvm build ovmf`)."),
        Rule(
            fragment: "does not support guest_memfd",
            advice: "The host kernel's KVM has no guest_memfd, which SNP needs (host kernel 6.11 or newer). "
                + "Run `sevvm caps`."),
        Rule(
            fragment: "does not support SMM",
            advice: "SEV-ES and SNP guests cannot use SMM: remove any `smm=on` from the machine options or extraArgs."),
        Rule(
            fragment: "flags=0x2",
            advice: "SNP firmware cannot be mapped as pflash: give a single-file OVMF.fd (sevvm passes it with -bios)."),
        Rule(
            fragment: "could not load PC BIOS",
            advice: "QEMU could not load the firmware as -bios. SNP needs a single-file OVMF.fd, not a split "
                + "OVMF_CODE.fd; check the definition's firmware."),
        Rule(
            fragment: "requires SEV-ES, but host SEV-ES support unavailable",
            advice: "The policy asks for SEV-ES but this host cannot run SEV-ES guests. Run `sevvm caps`."),
        Rule(
            fragment: "SNP_LAUNCH_START",
            advice: "The SEV firmware rejected the SNP launch (often the policy: check SMT, single-socket and ABI bits "
                + "against `sevvm caps`)."),
        Rule(
            fragment: "failed to set MSR 0x10a",
            advice: "KVM on this host cannot run `-cpu host`; use a named CPU model such as EPYC-v4."),
        Rule(
            fragment: "Could not access KVM kernel module",
            advice: "KVM is not available (no /dev/kvm access). Load kvm_amd, check permissions, or use --accel tcg "
                + "for an unencrypted guest."),
        Rule(
            fragment: "Failed to get \"write\" lock",
            advice: "Another QEMU uses this disk image. Stop the other VM, or give this one its own disk."),
        Rule(
            fragment: "Address already in use",
            advice: "A port forward or socket is already taken by another program: change the definition's network "
                + "port forwards."),
    ]

    /// The advice lines that match QEMU's stderr, in rule order, without repeats.
    public static func advice(forQEMUError stderr: String) -> [String] {
        var seen = Set<String>()
        let text = stderr.lowercased()
        return rules.compactMap { rule in
            guard text.contains(rule.fragment.lowercased()) else { return nil }
            return seen.insert(rule.advice).inserted ? rule.advice : nil
        }
    }
}
