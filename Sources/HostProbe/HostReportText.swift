// The human rendering of a HostReport: the check tree with fixes, the QMP facts, and one verdict per mode.
import FoundationEssentials
import Support

#if canImport(Glibc)
    import Glibc
#endif

extension HostReport {
    /// Text for a terminal: one line per check (indented under its parent), its fix below it, then verdicts.
    /// `terminal` decides colour (only on a TTY, never with NO_COLOR).
    public func text(terminal: Terminal) -> String {
        var lines: [String] = []
        let name = host.cpu.brand.isEmpty ? host.cpu.vendor : host.cpu.brand
        lines.append(terminal.paint("Host: \(name), Linux \(host.kernel)", .bold))
        var category: CheckCategory?
        for check in checks {
            if check.category != category {
                category = check.category
                lines.append("")
                lines.append(terminal.paint(check.category.title, .bold))
            }
            let indent = String(repeating: "  ", count: depth(of: check) + 1)
            lines.append("\(indent)[\(paint(check.status, terminal))] \(check.name): \(check.message)")
            if let hint = check.hint {
                lines.append("\(indent)       " + terminal.paint("fix: \(hint)", .cyan))
            }
        }
        if let capabilities {
            lines.append("")
            lines.append(terminal.paint("SEV capabilities (query-sev-capabilities)", .bold))
            lines.append("  cbitpos \(capabilities.cbitpos), reduced-phys-bits \(capabilities.reducedPhysBits)")
            lines.append("  cpu0-id \(capabilities.cpu0ID)")
            lines.append("  PDH \(capabilities.pdhSize) bytes (\(capabilities.pdh.summary))")
            let chain = capabilities.certChain.map(\.summary).joined(separator: "; ")
            lines.append("  certificate chain \(capabilities.certChainSize) bytes (\(chain))")
        }
        lines.append("")
        lines.append(terminal.paint("Verdict", .bold))
        for verdict in verdicts {
            let label = verdict.mode.displayName.padded(to: 8)
            if verdict.ready {
                let unverified = verdict.unverified.isEmpty ? "" : " (not verified: \(verdict.unverified.joined(separator: ", ")))"
                lines.append("  \(label) " + terminal.paint("ready", .green) + unverified)
            } else {
                lines.append("  \(label) " + terminal.paint("not ready", .red) + ": blocked by \(verdict.blocking.joined(separator: ", "))")
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    private func paint(_ status: CheckStatus, _ terminal: Terminal) -> String {
        switch status {
        case .pass: return terminal.paint(status.rawValue, .green)
        case .fail: return terminal.paint(status.rawValue, .red)
        case .warn: return terminal.paint(status.rawValue, .yellow)
        case .skip: return terminal.paint(status.rawValue, .dim)
        }
    }

    /// The report as JSON in the documented schema (keys sorted so diffs stay readable).
    public func json() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(self)
    }
}

extension CheckCategory {
    var title: String {
        switch self {
        case .cpu: return "CPU"
        case .bios: return "BIOS"
        case .kernel: return "Kernel"
        case .kvm: return "KVM"
        case .platform: return "AMD Secure Processor (/dev/sev)"
        case .resources: return "Resources"
        case .qemu: return "QEMU"
        case .firmware: return "Guest firmware (OVMF)"
        case .qmp: return "QMP"
        case .libvirt: return "libvirt"
        }
    }
}

extension SEVCertificate {
    /// "PEK, API 1.55, ECDSA-SHA256, signed by OCA, CEK".
    var summary: String {
        let signers = signedBy.isEmpty ? "" : ", signed by \(signedBy.joined(separator: ", "))"
        return "\(usage), API \(apiMajor).\(apiMinor), \(algorithm)\(signers)"
    }
}
