// The SEV-related lines of the kernel log (dmesg): RMP table, SEV/SNP API versions, ASID ranges, INIT errors.
import FoundationEssentials
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// What the kernel said about SEV while booting.
public struct KernelLogFacts: Sendable, Equatable, Codable {
    /// "1.58 build:5" from `ccp ...: SEV-SNP API:1.58 build:5`.
    public var snpAPI: String?
    public var sevAPI: String?
    /// "SEV-SNP enabled (ASIDs 1 - 98)" and friends, as printed by kvm_amd.
    public var asidLines: [String]
    public var rmpTableFound: Bool
    /// Lines reporting an INIT or SNP failure, verbatim.
    public var errors: [String]

    /// Picks the SEV-related lines out of kernel messages (dmesg text or /dev/kmsg records).
    public init(lines: [String]) {
        var snpAPI: String?
        var sevAPI: String?
        var asidLines: [String] = []
        var rmp = false
        var errors: [String] = []
        for raw in lines {
            let line = Self.message(of: raw)
            if let range = line.firstRange(of: "SEV-SNP API:") {
                snpAPI = String(line[range.upperBound...]).trimmingSpaces
            } else if let range = line.firstRange(of: "SEV API:") {
                sevAPI = String(line[range.upperBound...]).trimmingSpaces
            }
            if line.contains("kvm_amd:"), line.contains("ASIDs") { asidLines.append(line) }
            if line.contains("RMP table physical range") || line.contains("RMP base table physical range")
                || line.contains("RMP segment")
            {
                rmp = true
            }
            let lower = line.lowercased()
            if (lower.contains("sev") || lower.contains("snp") || lower.contains("psp") || lower.contains("ccp"))
                && (lower.contains("failed") || lower.contains("cannot be supported") || lower.contains("not been reserved"))
            {
                errors.append(line)
            }
        }
        self.snpAPI = snpAPI
        self.sevAPI = sevAPI
        self.asidLines = asidLines
        self.rmpTableFound = rmp
        self.errors = errors
    }

    /// Strips dmesg's "[    1.234567] " prefix or a kmsg record's "6,123,456,-;" header.
    static func message(of line: String) -> String {
        if line.hasPrefix("["), let close = line.firstIndex(of: "]") {
            return String(line[line.index(after: close)...]).trimmingSpaces
        }
        if let semicolon = line.firstIndex(of: ";"),
            line[..<semicolon].allSatisfy({ $0.isNumber || $0 == "," || $0 == "-" || $0 == "c" || $0 == "+" })
        {
            return String(line[line.index(after: semicolon)...])
        }
        return line
    }

    /// The modes an error line rules out: SNP-only complaints (RMP, IOMMU, SNP_INIT) leave SEV and SEV-ES alone.
    public static func modesBlocked(by error: String) -> [GuestMode] {
        let snpOnly = ["SNP", "RMP", "IOMMU"].contains { error.contains($0) }
        return snpOnly ? [.snp] : [.sev, .sevES, .snp]
    }

    /// The fix for a known INIT failure (seed README FAQ), or nil.
    public static func hint(for error: String) -> String? {
        if error.contains("error 0x13") || error.contains("error 0x0013") {
            return "error 0x13 is HWERROR_PLATFORM: memory encryption is off in the BIOS. Enable "
                + "Advanced → AMD CBS → CPU Common Options → SMEE (check with `rdmsr 0xc0010010`: bit 23 must be set)"
        }
        if error.contains("failed to INIT error 0x1"), error.contains("rc -5") {
            return "the PSP bootloader is too old for this SEV firmware: update the system BIOS, then reload ccp and kvm_amd"
        }
        if error.contains("IOMMU") {
            return "SNP needs the IOMMU on and not in passthrough: enable Advanced → NBIO Common Options → IOMMU and "
                + "remove iommu=pt / amd_iommu=off from the kernel command line"
        }
        if error.contains("RMP") || error.contains("not been reserved") {
            return "enable Advanced → AMD CBS → CPU Common Options → SNP Memory (RMP Table) Coverage in the BIOS"
        }
        return nil
    }
}

enum KernelLog {
    /// Kernel messages: /dev/kmsg on the live host, `<root>/dmesg.txt` (dmesg output) in a fixture tree.
    /// nil when they cannot be read (e.g. dmesg_restrict without CAP_SYSLOG).
    static func read(root: HostRoot) -> [String]? {
        if !root.isLive {
            return root.text("/dmesg.txt").map { $0.split(separator: "\n").map(String.init) }
        }
        return readKmsg()
    }

    /// Reads every buffered record of /dev/kmsg without blocking.
    private static func readKmsg() -> [String]? {
        let fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var lines: [String] = []
        var buffer = [UInt8](repeating: 0, count: 8192)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n > 0 {
                // One record per read; continuation lines (" KEY=value") follow the first line.
                let record = String(decoding: buffer[0..<n], as: UTF8.self)
                if let first = record.split(separator: "\n").first { lines.append(String(first)) }
            } else if n < 0 && errno == EPIPE {
                continue  // the ring buffer overwrote records we had not read yet
            } else if n < 0 && errno == EINTR {
                continue
            } else {
                break
            }
        }
        return lines
    }
}
