// The launch plan: the QEMU machine argv for one VM, plus the facts it was made from.
import Definitions
import FoundationEssentials
import HostProbe
import Support

#if canImport(Glibc)
    import Glibc
#endif

public struct LaunchPlan: Sendable, Codable, Equatable {
    public var qemu: QEMUInstallation
    /// QEMU's arguments without the executable and without runtime plumbing (-name, -S,
    /// -daemonize, -pidfile, -qmp, serial chardev, -display), which Runtime adds.
    public var arguments: [String]
    public var firmware: FirmwareChoice?
    public var mode: GuestMode
    public var accel: String
    public var warnings: [String]
    /// The per-VM OVMF vars file this plan boots with (split firmware), absolute; Runtime makes
    /// sure it exists (copying `firmware.vars`) before starting.
    public var varsCopy: String?
    /// The definition the plan was made from: what start measures the expected digest from, so
    /// digest and argv always describe the same definition (no second read of vms/NAME.json).
    public var definition: VMDefinition?

    public init(
        qemu: QEMUInstallation, arguments: [String], firmware: FirmwareChoice?, mode: GuestMode, accel: String,
        warnings: [String], varsCopy: String?, definition: VMDefinition? = nil
    ) {
        self.qemu = qemu
        self.arguments = arguments
        self.firmware = firmware
        self.mode = mode
        self.accel = accel
        self.warnings = warnings
        self.varsCopy = varsCopy
        self.definition = definition
    }

    /// The full argv: executable first.
    public var commandLine: [String] { [qemu.path] + arguments }

    /// The command as a shell would take it, one option (with its value) per line, each word
    /// quoted where needed: what `start --dry-run` prints.
    public static func shellCommand(_ argv: [String]) -> String {
        var lines: [String] = []
        for word in argv {
            if word.hasPrefix("-") || lines.isEmpty {
                lines.append(shellQuote(word))
            } else {
                lines[lines.count - 1] += " " + shellQuote(word)
            }
        }
        return lines.joined(separator: " \\\n    ")
    }

    /// `word`, single-quoted unless it only holds characters a shell leaves alone.
    public static func shellQuote(_ word: String) -> String {
        let safe = word.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                return true
            default:
                return Array("-_./=:,+@%".utf8).contains(byte)
            }
        }
        if safe && !word.isEmpty { return word }
        return "'" + word.replacing("'", with: "'\\''") + "'"
    }
}

extension LaunchPlan {
    /// Makes the VM's OVMF vars copy from the firmware's template when the plan boots from split
    /// firmware and the copy does not exist yet (e.g. `start --sev` of a VM created for SNP).
    /// Returns true when it made the file. Runtime calls this right before starting QEMU.
    @discardableResult
    public func ensureVarsCopy() throws -> Bool {
        guard let varsCopy, !FileManager.default.fileExists(atPath: varsCopy) else { return false }
        guard let template = firmware?.vars, let data = FileManager.default.contents(atPath: template) else {
            throw LaunchError.varsCopyFailed(
                path: varsCopy, reason: "the firmware has no readable vars template (\(firmware?.vars ?? "none"))")
        }
        do {
            try AtomicFile.makeDirectory(varsCopy.parentPath, permissions: 0o755)
            try AtomicFile.write(data, to: varsCopy, permissions: 0o600, exclusive: true)
        } catch SupportError.io(_, _, EEXIST) {
            return false  // another start made it a moment ago
        } catch {
            throw LaunchError.varsCopyFailed(path: varsCopy, reason: String(describing: error))
        }
        return true
    }
}
