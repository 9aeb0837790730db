// Test doubles fed from fixture files: a host's CPUID, MSRs, /dev/sev and /dev/kvm answers from hardware.json.
import Foundation
import Testing

@testable import HostProbe

/// One fixture host: a root tree plus hardware.json, optionally changed by a variant from variants.json.
struct FixtureHost {
    var root: String
    var cpuid: [UInt32: CPUIDRegisters]
    var msr: [UInt32: UInt64]
    var platformStatus: [UInt8]?
    var snpPlatformStatus: [UInt8]?
    var snpError: (errno: Int32, firmware: UInt32)?
    var chipID: [UInt8]
    var kvmAPIVersion: Int32

    /// Copies `hosts/<base>/root` into `folder` and reads `hosts/<base>/hardware.json`.
    init(base: String, in folder: TemporaryFolder) throws {
        root = folder.path + "/root"
        try FileManager.default.copyItem(atPath: Fixtures.path("hosts/\(base)/root"), toPath: root)
        let json = try #require(
            JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: Fixtures.path("hosts/\(base)/hardware.json"))))
                as? [String: Any])
        let leaves = try #require(json["cpuid"] as? [String: [String]])
        cpuid = try Dictionary(
            uniqueKeysWithValues: leaves.map { key, values in
                let r = try values.map { try #require(UInt32(hex: $0)) }
                return (try #require(UInt32(hex: key)), CPUIDRegisters(eax: r[0], ebx: r[1], ecx: r[2], edx: r[3]))
            })
        msr = try Self.msrs(json["msr"])
        let sev = try #require(json["sev"] as? [String: String])
        platformStatus = try [UInt8](hexString: #require(sev["platformStatus"]))
        snpPlatformStatus = try [UInt8](hexString: #require(sev["snpPlatformStatus"]))
        chipID = try [UInt8](hexString: #require(sev["chipID"]))
        kvmAPIVersion = Int32(try #require(json["kvmAPIVersion"] as? Int))
    }

    /// The base host with a variant's changes applied.
    init(variant: HostVariant, in folder: TemporaryFolder) throws {
        try self.init(base: variant.base, in: folder)
        for (relative, text) in variant.files {
            try Data(text.utf8).write(to: URL(fileURLWithPath: root + "/" + relative))
        }
        for relative in variant.remove { try FileManager.default.removeItem(atPath: root + "/" + relative) }
        if let msr = variant.msr { self.msr = msr }
        if let status = variant.platformStatus { platformStatus = status }
        if let status = variant.snpPlatformStatus { snpPlatformStatus = status }
        if let error = variant.snpError { snpError = error }
    }

    static func msrs(_ value: Any?) throws -> [UInt32: UInt64] {
        let table = try #require(value as? [String: String])
        return try Dictionary(uniqueKeysWithValues: table.map { (try #require(UInt32(hex: $0.key)), try #require(UInt64(hex: $0.value))) })
    }

    func prober() -> HostProber {
        HostProber(
            root: HostRoot(root), cpuid: TableCPUID(leaves: cpuid), msr: TableMSR(values: msr),
            sevDevice: ReplaySEVDevice(host: self), kvm: ReplayKVM(path: root + "/dev/kvm", version: kvmAPIVersion))
    }
}

/// A row of variants.json: a broken host and what caps must say about it.
struct HostVariant: CustomTestStringConvertible, Sendable {
    var name: String
    var base: String
    var files: [String: String]
    var remove: [String]
    var msr: [UInt32: UInt64]?
    var platformStatus: [UInt8]?
    var snpPlatformStatus: [UInt8]?
    var snpError: (errno: Int32, firmware: UInt32)?
    var failed: [String]
    var warned: [String]
    var skipped: [String]
    var hintContains: [String: String]
    var ready: [String]

    var testDescription: String { name }

    static func all() throws -> [HostVariant] {
        let rows = try #require(
            JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: Fixtures.path("hosts/variants.json"))))
                as? [[String: Any]])
        return try rows.map { row in
            let snpError = (row["snpError"] as? [String: Int]).map { (Int32($0["errno"] ?? 0), UInt32($0["firmware"] ?? 0)) }
            return HostVariant(
                name: try #require(row["name"] as? String), base: try #require(row["base"] as? String),
                files: row["files"] as? [String: String] ?? [:], remove: row["remove"] as? [String] ?? [],
                msr: try row["msr"].map(FixtureHost.msrs),
                platformStatus: try (row["platformStatus"] as? String).map { try [UInt8](hexString: $0) },
                snpPlatformStatus: try (row["snpPlatformStatus"] as? String).map { try [UInt8](hexString: $0) },
                snpError: snpError, failed: row["failed"] as? [String] ?? [], warned: row["warned"] as? [String] ?? [],
                skipped: row["skipped"] as? [String] ?? [], hintContains: row["hintContains"] as? [String: String] ?? [:],
                ready: row["ready"] as? [String] ?? [])
        }
    }

    /// Loaded once for the parameterized test's arguments; an unreadable file yields no cases (and the count test fails).
    static let loaded: [HostVariant] = (try? all()) ?? []
}

struct TableMSR: MSRSource {
    var values: [UInt32: UInt64]
    func read(_ msr: UInt32) throws -> UInt64 {
        guard let value = values[msr] else { throw HostProbeError.unreadable(path: "/dev/cpu/0/msr", operation: "open", errno: EACCES) }
        return value
    }
}

struct ReplaySEVDevice: SEVDevice {
    var path: String
    var platform: [UInt8]?
    var snp: [UInt8]?
    var snpError: (errno: Int32, firmware: UInt32)?
    var id: [UInt8]

    init(host: FixtureHost) {
        path = host.root + "/dev/sev"
        platform = host.platformStatus
        snp = host.snpPlatformStatus
        snpError = host.snpError
        id = host.chipID
    }

    var isPresent: Bool { FileManager.default.fileExists(atPath: path) }

    func platformStatus() throws -> SEVPlatformStatus {
        guard isPresent, let platform else { throw HostProbeError.unreadable(path: path, operation: "open", errno: ENOENT) }
        return try SEVPlatformStatus(bytes: platform)
    }

    func snpPlatformStatus() throws -> SNPPlatformStatus {
        guard isPresent, let snp else { throw HostProbeError.unreadable(path: path, operation: "open", errno: ENOENT) }
        if let snpError {
            throw HostProbeError.sevCommandFailed(
                path: path, command: "SNP_PLATFORM_STATUS", errno: snpError.errno, firmwareError: snpError.firmware)
        }
        return try SNPPlatformStatus(bytes: snp)
    }

    func chipID() throws -> [UInt8] {
        guard isPresent else { throw HostProbeError.unreadable(path: path, operation: "open", errno: ENOENT) }
        return id
    }
}

struct ReplayKVM: KVMDevice {
    var path: String
    var version: Int32
    func apiVersion() throws -> Int32 { version }
}

extension UnsignedInteger where Self: FixedWidthInteger {
    init?(hex: String) {
        self.init(hex.hasPrefix("0x") ? String(hex.dropFirst(2)) : hex, radix: 16)
    }
}

extension Array where Element == UInt8 {
    init(hexString: String) throws {
        let characters = [Character](hexString)
        self = try stride(from: 0, to: characters.count, by: 2).map { try #require(UInt8(String(characters[$0..<$0 + 2]), radix: 16)) }
    }
}
