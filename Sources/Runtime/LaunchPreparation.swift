// Gathers what a start needs (definition, QEMU, firmware, host facts) and asks the LaunchPlanner for the plan.
import Definitions
import FoundationEssentials
import HostProbe
import Launch
import Support

#if canImport(Glibc)
    import Glibc
#endif

extension VMRuntime {
    /// What the user asked `start` for, beyond the definition.
    public struct LaunchRequest: Sendable {
        public var mode: GuestMode?
        public var accel: String?
        public var qemuPath: String?
        public var dryRun: Bool

        public init(mode: GuestMode? = nil, accel: String? = nil, qemuPath: String? = nil, dryRun: Bool = false) {
            self.mode = mode
            self.accel = accel
            self.qemuPath = qemuPath
            self.dryRun = dryRun
        }
    }

    /// The launch plan for this VM: a pure function of the definition and the host's facts.
    public func plan(_ request: LaunchRequest = LaunchRequest()) throws -> LaunchPlan {
        let definition = try DefinitionStore(workspace: workspace).load(name)
        let mode = request.mode ?? definition.mode
        let qemu = try QEMUVersionCache.installation(workspace: workspace, explicitPath: request.qemuPath)
        let firmware: FirmwareChoice?
        if mode == .none, definition.directBoot != nil, definition.firmware.explicitPath == nil {
            // An unencrypted guest booting its kernel directly needs no UEFI: QEMU's default BIOS
            // loads the kernel itself, seconds faster than OVMF under TCG.
            firmware = nil
        } else {
            firmware = try FirmwareDiscovery.find(for: mode, workspace: workspace, explicitPath: definition.firmware.explicitPath)
        }
        return try LaunchPlanner.plan(
            for: definition, mode: request.mode, accel: request.accel, host: HostProber.probeSEVHostFacts(),
            qemu: qemu, firmware: firmware, workspace: workspace, purpose: request.dryRun ? .dryRun : .launch)
    }

    /// Split firmware boots with the VM's own copy of the OVMF vars: made from the template on first use.
    func ensureVarsCopy(_ plan: LaunchPlan) throws {
        guard let copy = plan.varsCopy, !FileManager.default.fileExists(atPath: copy) else { return }
        guard let template = plan.firmware?.vars, let data = FileManager.default.contents(atPath: template) else {
            throw RuntimeError.io(path: plan.firmware?.vars ?? copy, operation: "read the OVMF vars template", errno: ENOENT)
        }
        try AtomicFile.makeDirectory(copy.parentPath, permissions: 0o755)
        try AtomicFile.write(data, to: copy, permissions: 0o600)
    }
}
