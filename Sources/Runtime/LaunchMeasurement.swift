// What a verifier should expect from a VM: its definition mapped onto the launch digest inputs.
import Definitions
import FoundationEssentials
import HostProbe
import Launch
import Measure
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// Maps a VM definition onto Measure's inputs exactly as `sevvm start` launches it, so
/// `sevvm measure NAME`, `sevvm report NAME` and the digest recorded at start always agree.
public enum LaunchMeasurement {
    /// The digest inputs for `definition` launched in `mode` (default: the definition's).
    /// `firmware` overrides the definition's firmware; `auto` resolves as `start` would.
    public static func input(
        for definition: VMDefinition, mode modeOverride: GuestMode? = nil, workspace: Workspace, firmware firmwareOverride: String? = nil
    ) throws -> MeasurementInput {
        let mode = modeOverride ?? definition.mode
        guard mode != .none else { throw MeasureError.unsupportedMode(mode) }
        let firmware =
            try firmwareOverride ?? definition.firmware.explicitPath
            ?? FirmwareDiscovery.find(for: mode, workspace: workspace, explicitPath: nil).code
        let kernelHashes = mode == .snp ? definition.snp.kernelHashes : definition.sev.kernelHashes
        let boot = kernelHashes ? definition.directBoot : nil
        return try MeasurementInput(
            launching: mode, firmware: firmware, vcpus: definition.vcpus, cpuModel: definition.cpu, kernel: boot?.kernel,
            initrd: boot?.initrd, append: boot?.append)
    }

    /// The measurement, policy and host data an SNP guest of this definition must report.
    public static func expectation(for definition: VMDefinition, workspace: Workspace, firmware: String?) throws -> ReportExpectation {
        guard definition.mode == .snp else { throw MeasureError.unsupportedMode(definition.mode) }
        let input = try input(for: definition, mode: .snp, workspace: workspace, firmware: firmware)
        var hostData = [UInt8](repeating: 0, count: SNPSettings.hostDataLength)
        if let text = definition.snp.hostData, let decoded = Data(base64Encoded: text) { hostData = [UInt8](decoded) }
        return ReportExpectation(measurement: try LaunchDigest.compute(input), policy: definition.snp.policy.rawValue, hostData: hostData)
    }

    /// The expected digest (hex) for a VM started with `plan`. Computed from the firmware the
    /// plan really boots, so it matches what the PSP measures.
    public static func expectedDigest(for definition: VMDefinition, plan: LaunchPlan, workspace: Workspace) throws -> String {
        let input = try input(for: definition, mode: plan.mode, workspace: workspace, firmware: plan.firmware?.code)
        return try hexString(LaunchDigest.compute(input))
    }
}
