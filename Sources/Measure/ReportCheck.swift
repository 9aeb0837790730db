// ReportCheck: compare an SNP attestation report with what the verifier expects, naming each mismatch.
import Support

/// What a guest's report should say: each nil field is not checked.
public struct ReportExpectation: Sendable, Equatable {
    public var measurement: [UInt8]?
    public var policy: UInt64?
    public var hostData: [UInt8]?

    public init(measurement: [UInt8]? = nil, policy: UInt64? = nil, hostData: [UInt8]? = nil) {
        self.measurement = measurement
        self.policy = policy
        self.hostData = hostData
    }
}

/// One compared field: what the report says, what was expected.
public struct ReportComparison: Sendable, Equatable {
    public var field: String
    public var reported: String
    public var expected: String
    public var matches: Bool { reported == expected }
}

extension SNPAttestationReport {
    /// The compared fields, in report order (measurement, policy, host data).
    public func compare(with expectation: ReportExpectation) -> [ReportComparison] {
        var result: [ReportComparison] = []
        if let measurement = expectation.measurement {
            result.append(ReportComparison(field: "measurement", reported: hexString(self.measurement), expected: hexString(measurement)))
        }
        if let policy = expectation.policy {
            result.append(ReportComparison(field: "policy", reported: Self.hex(self.policy), expected: Self.hex(policy)))
        }
        if let hostData = expectation.hostData {
            result.append(ReportComparison(field: "host_data", reported: hexString(self.hostData), expected: hexString(hostData)))
        }
        return result
    }

    /// Every field as (name, text), with the names AMD's specification and snpguest use.
    public var fields: [(name: String, value: String)] {
        [
            ("version", "\(version)"), ("guest_svn", "\(guestSVN)"), ("policy", Self.hex(policy)),
            ("family_id", hexString(familyID)), ("image_id", hexString(imageID)), ("vmpl", "\(vmpl)"),
            ("signature_algo", signatureAlgorithm == 1 ? "1 (ECDSA P-384 with SHA-384)" : "\(signatureAlgorithm)"),
            ("current_tcb", currentTCB.description), ("platform_info", Self.hex(platformInfo)),
            ("author_key_en", "\(authorKeyEnabled)"), ("mask_chip_key", "\(maskChipKey)"),
            ("signing_key", ["VCEK", "VLEK"].indices.contains(Int(signingKey)) ? ["VCEK", "VLEK"][Int(signingKey)] : "\(signingKey)"),
            ("report_data", hexString(reportData)), ("measurement", hexString(measurement)), ("host_data", hexString(hostData)),
            ("id_key_digest", hexString(idKeyDigest)), ("author_key_digest", hexString(authorKeyDigest)),
            ("report_id", hexString(reportID)), ("report_id_ma", hexString(reportIDMigrationAgent)),
            ("reported_tcb", reportedTCB.description),
            ("cpuid_fam_mod_step", version >= 3 ? "\(cpuidFamily)/\(cpuidModel)/\(cpuidStepping)" : "(report version < 3)"),
            ("chip_id", hexString(chipID)), ("committed_tcb", committedTCB.description),
            ("current_version", currentVersion), ("committed_version", committedVersion), ("launch_tcb", launchTCB.description),
        ]
    }

    static func hex(_ value: UInt64) -> String { "0x" + String(value, radix: 16) }
}
