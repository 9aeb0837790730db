// A real Milan SNP attestation report: fields, its VCEK signature, and tampering detected.
import Foundation
import Support
import Testing

@testable import Measure

@Suite struct AttestationReportTests {
    func milanReport() throws -> SNPAttestationReport {
        try SNPAttestationReport(contentsOf: try Fixtures.path("milan-report.hex"))
    }

    func milanVCEK() throws -> VCEKCertificate {
        try VCEKCertificate(path: try Fixtures.path("milan-vcek.der"))
    }

    @Test func parsesTheFields() throws {
        let report = try milanReport()
        #expect(report.version == 2)
        #expect(report.guestSVN == 0)
        #expect(report.policy == 0x30000)
        #expect(report.vmpl == 0)
        #expect(report.signatureAlgorithm == 1)
        #expect(report.currentTCB.raw == 0x7308_0000_0000_0003)
        #expect(report.currentTCB.bootloader == 3 && report.currentTCB.tee == 0)
        #expect(report.currentTCB.snp == 8 && report.currentTCB.microcode == 0x73)
        #expect(report.platformInfo == 1)
        #expect(!report.authorKeyEnabled)
        #expect(report.signingKey == 0)
        #expect(hexString(report.reportData.prefix(8)) == "d447b55d197491bf")
        #expect(
            hexString(report.measurement)
                == "7a1e5c266c0108dbc9bb94fa926951320940915d0aafb42464bd88b579ea158d3e1a0dc39b2c60bd95b9c480cd81841f")
        #expect(report.hostData == [UInt8](repeating: 0, count: 32))
        #expect(hexString(report.reportID.prefix(4)) == "92b3b47d")
        #expect(report.reportIDMigrationAgent == [UInt8](repeating: 0xFF, count: 32))
        #expect(report.reportedTCB == report.currentTCB)
        #expect(hexString(report.chipID.prefix(4)) == "d49554ec")
        #expect(report.committedTCB == report.currentTCB)
        #expect(report.currentVersion == "1.52.4")
        #expect(report.committedVersion == "1.52.4")
        #expect(report.launchTCB == report.currentTCB)
        #expect(hexString(report.signatureR.prefix(4)) == "61ab4f11")
    }

    @Test func binaryAndHexFilesReadTheSame() throws {
        let report = try milanReport()
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/report.bin"
        try Data(report.bytes).write(to: URL(fileURLWithPath: path))
        #expect(try SNPAttestationReport(contentsOf: path) == report)
    }

    @Test func signatureVerifiesWithTheVCEK() throws {
        try milanReport().verifySignature(with: try milanVCEK())
    }

    @Test(arguments: [0x08, 0x50, 0x90, 0xC0, 0x1A0, 0x29F, 0x2A0, 0x2E8])
    func oneFlippedByteFails(offset: Int) throws {
        var bytes = try milanReport().bytes
        bytes[offset] ^= 0x01
        let tampered = try SNPAttestationReport(bytes: bytes)
        #expect(throws: MeasureError.self) { try tampered.verifySignature(with: try milanVCEK()) }
    }

    @Test func wrongSizeIsRefused() throws {
        #expect(throws: MeasureError.reportSize(actual: 1000)) { try SNPAttestationReport(bytes: [UInt8](repeating: 0, count: 1000)) }
    }

    @Test func nonHexTextIsRefused() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/report.txt"
        try Data("this is not a report".utf8).write(to: URL(fileURLWithPath: path))
        #expect(throws: MeasureError.self) { try SNPAttestationReport(contentsOf: path) }
    }

    @Test func vcekKeyIsTheCertificatesP384Point() throws {
        let point = try milanVCEK().publicKeyPoint
        #expect(point.count == 97)
        #expect(hexString(point.prefix(6)) == "04a17accd80b")
    }

    @Test func garbageIsNotACertificate() throws {
        #expect(throws: MeasureError.self) { try VCEKCertificate(der: Array("not a certificate".utf8), path: "x.der") }
        let report = try milanReport()
        #expect(throws: MeasureError.self) { try VCEKCertificate(der: report.bytes, path: "report.bin") }
    }
}

@Suite struct ReportCheckTests {
    @Test func namesEachMismatch() throws {
        let report = try SNPAttestationReport(contentsOf: try Fixtures.path("milan-report.hex"))
        let expectation = ReportExpectation(
            measurement: [UInt8](repeating: 0xAB, count: 48), policy: 0x30000, hostData: [UInt8](repeating: 1, count: 32))
        let checks = report.compare(with: expectation)
        #expect(checks.map(\.field) == ["measurement", "policy", "host_data"])
        #expect(checks.map(\.matches) == [false, true, false])
        #expect(checks[0].reported == hexString(report.measurement))
        #expect(checks[0].expected == String(repeating: "ab", count: 48))
        #expect(checks[1].reported == "0x30000")
    }

    @Test func matchingExpectationHasNoMismatch() throws {
        let report = try SNPAttestationReport(contentsOf: try Fixtures.path("milan-report.hex"))
        let checks = report.compare(
            with: ReportExpectation(measurement: report.measurement, policy: report.policy, hostData: report.hostData))
        #expect(checks.count == 3)
        #expect(checks.allSatisfy { $0.matches })
        #expect(report.compare(with: ReportExpectation()).isEmpty)
    }

    @Test func fieldsListEveryReportField() throws {
        let report = try SNPAttestationReport(contentsOf: try Fixtures.path("milan-report.hex"))
        let fields = Dictionary(uniqueKeysWithValues: report.fields.map { ($0.name, $0.value) })
        #expect(fields["policy"] == "0x30000")
        #expect(fields["measurement"] == hexString(report.measurement))
        #expect(fields["signing_key"] == "VCEK")
        #expect(fields["current_version"] == "1.52.4")
        #expect(report.fields.count == 26)
    }
}
