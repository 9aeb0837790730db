// Gathers what a start needs (definition, QEMU, firmware, host facts) and asks the LaunchPlanner for the plan.
import Definitions
import HostProbe
import Launch
import Support

extension VMRuntime {
    /// What the user asked `start` for, beyond the definition.
    public struct LaunchRequest: Sendable {
        public var mode: GuestMode?
        public var accel: String?
        public var qemuPath: String?

        public init(mode: GuestMode? = nil, accel: String? = nil, qemuPath: String? = nil) {
            self.mode = mode
            self.accel = accel
            self.qemuPath = qemuPath
        }
    }

    /// The launch plan for this VM: a pure function of the definition and the host's facts.
    public func plan(_ request: LaunchRequest = LaunchRequest()) throws -> LaunchPlan {
        let definition = try DefinitionStore(workspace: workspace).load(name)
        let mode = request.mode ?? definition.mode
        let qemu = try QEMUDiscovery.find(workspace: workspace, explicitPath: request.qemuPath)
        // An unencrypted guest can boot without OVMF (QEMU's default BIOS); encrypted ones cannot.
        let firmware: FirmwareChoice?
        do {
            firmware = try FirmwareDiscovery.find(for: mode, workspace: workspace, explicitPath: definition.firmware.explicitPath)
        } catch where mode == .none && definition.firmware.explicitPath == nil {
            firmware = nil
        }
        return try LaunchPlanner.plan(
            for: definition, mode: request.mode, accel: request.accel, host: HostProber.probeSEVHostFacts(),
            qemu: qemu, firmware: firmware, workspace: workspace)
    }
}
